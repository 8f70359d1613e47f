"""Incidents in the registry's database, on SQLite and PostgreSQL: alarms folded per stream,
grouped, acknowledged and resolved by people, resolved as quiet; a replayed merge writes
nothing twice; every change is audited and announced in the outbox with the incident's URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from driftd.contracts.monitor import DriftDetected
from driftd.incidents.lifecycle import Policy
from driftd.incidents.store import IncidentStore
from driftd.registry import schema as rt
from driftd.registry.errors import Conflict, InvalidRequest, NotFound

POLICY = Policy(cooldown_s=100.0, group_window_s=50.0, resolve_after_s=1_000.0)


def alarm(ts: float, stream: str = "error", detector: str = "ADWIN") -> DriftDetected:
    return DriftDetected("fraud", "3", stream, detector, "drift", ts, 2.5, 1.0, "pinned:[0,10)")


def events(registry: Any) -> list[dict[str, Any]]:
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(rt.outbox.c.payload).order_by(rt.outbox.c.id))
        return [e for e in (json.loads(r.payload) for r in rows) if e["event"].startswith("inc")]


@pytest.fixture
def store(registry: Any) -> IncidentStore:
    return IncidentStore(registry, POLICY, base_url="https://driftd.example/")


def test_alarms_become_one_incident_per_stream_grouped_and_announced(
    store: IncidentStore, registry: Any
) -> None:
    changes = store.record([alarm(10.0), alarm(20.0), alarm(25.0, "feature:amount")])
    assert [c for _, c in changes] == ["opened", "extended", "opened"]
    err, amount = (store.list(state="open", model="fraud")[i] for i in (1, 0))
    assert (err.alarms, err.stream, amount.stream) == (2, "error", "feature:amount")
    assert amount.group == err.group == err.id
    sent = events(registry)
    assert [e["event"] for e in sent] == ["incident.opened", "incident.opened"]
    assert sent[0]["url"] == f"https://driftd.example/api/v1/incidents/{err.id}"
    assert store.url(err.id) == sent[0]["url"]
    assert sent[0]["report_url"].startswith(sent[0]["url"] + "/report?sig=")
    sig = sent[0]["report_url"].rpartition("=")[2]
    assert store.signed(err.id, sig) and not store.signed(amount.id, sig)


def test_a_replayed_merge_counts_nothing_twice(store: IncidentStore, registry: Any) -> None:
    batch = [alarm(10.0), alarm(11.0, detector="CUSUM")]
    first = store.record(batch, {("fraud", "3", "error"): {"shifts": []}})
    again = store.record(batch)  # the leader crashed before its save: the same alarms again
    assert [(i.id, c) for i, c in again] == [(i.id, c) for i, c in first]
    (inc,) = store.list()
    assert inc.alarms == 2 and inc.detectors == ("ADWIN", "CUSUM")
    assert len(events(registry)) == 1
    assert store.evidence(inc.id) == {"shifts": []}
    store.record([alarm(11.0, detector="CUSUM"), alarm(12.0)])  # overlapping: one new
    assert store.get(inc.id).alarms == 3


def test_people_acknowledge_and_resolve_with_4xx_errors_for_bad_requests(
    store: IncidentStore, registry: Any
) -> None:
    ((inc, _),) = store.record([alarm(10.0)])
    acked = store.acknowledge(inc.id, "alice", "looking", request_id="r1")
    assert (acked.state, acked.acknowledged_by, acked.note) == ("acknowledged", "alice", "looking")
    assert store.acknowledge(inc.id, "alice", "looking", request_id="r1") == acked  # idempotent
    done = store.resolve(inc.id, "alice", "rolled back the feature pipeline")
    assert (done.state, done.resolution, done.resolved_by) == ("resolved", "manual", "alice")
    with pytest.raises(Conflict, match="resolved"):
        store.acknowledge(inc.id, "bob")
    with pytest.raises(NotFound):
        store.resolve("inc-nope", "bob")
    with pytest.raises(InvalidRequest, match="state must be one of"):
        store.list(state="closed")
    assert [e["event"] for e in events(registry)] == [
        "incident.opened",
        "incident.acknowledged",
        "incident.resolved",
    ]
    trail = [r.action for r in registry.audit_log() if r.action.startswith("incident")]
    assert trail == ["incident.opened", "incident.acknowledged", "incident.resolved"]
    assert registry.verify_audit().ok
    # within the cooldown the same incident reopens; its acknowledgement is cleared
    ((again, what),) = store.record([alarm(50.0)])
    assert (again.id, what, again.state, again.reopened) == (inc.id, "reopened", "open", 1)


def test_a_quiet_stream_is_resolved_by_the_event_clock(store: IncidentStore) -> None:
    store.record([alarm(10.0), alarm(900.0, "feature:amount")])
    assert store.resolve_quiet(1_009.0) == []
    (done,) = store.resolve_quiet(1_010.0)
    assert (done.stream, done.resolution, done.resolved_at) == ("error", "quiet", 1_010.0)
    assert store.resolve_quiet(1_010.0) == []  # already resolved
    assert [i.state for i in store.list(model="fraud")] == ["open", "resolved"]


def test_incidents_are_metrics_with_their_links(store: IncidentStore, registry: Any) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from driftd.daemon.incidents import IncidentCollector

    ((a, _), (b, _)) = store.record([alarm(10.0), alarm(12.0, "feature:amount")])
    store.resolve(a.id, "alice")
    reg = CollectorRegistry()
    reg.register(IncidentCollector(store))
    text = generate_latest(reg).decode()
    assert 'driftd_incidents{model="fraud",state="open"} 1.0' in text
    assert 'driftd_incidents{model="fraud",state="resolved"} 1.0' in text
    assert f'incident="{b.id}"' in text and f'incident="{a.id}"' not in text
    assert f'url="https://driftd.example/api/v1/incidents/{b.id}"' in text
    assert f'report_url="{store.report_url(b.id)}"' in text and "?sig=" in text
    assert 'driftd_incident_open_since_timestamp_seconds{model="fraud"} 12.0' in text


def test_a_reopened_incident_goes_quiet_again_and_a_nan_statistic_is_stored(
    store: IncidentStore,
) -> None:
    import math

    ((inc, _),) = store.record([alarm(10.0)])
    assert [i.id for i in store.resolve_quiet(1_010.0)] == [inc.id]
    ((again, what),) = store.record([alarm(1_050.0)])  # within the cooldown of the resolve
    assert (again.id, what) == (inc.id, "reopened")
    (second,) = store.resolve_quiet(2_050.0)  # quiet again: resolved again, not replayed
    assert second.id == inc.id and second.resolved_at == 2_050.0
    assert store.get(inc.id).state == "resolved"
    odd = DriftDetected("fraud", "3", "score", "KSWIN", "drift", 5.0, math.nan, math.inf, "")
    ((got, _),) = store.record([odd])
    back = store.get(got.id)
    assert math.isnan(back.statistic) and math.isnan(back.threshold)  # stored as null
