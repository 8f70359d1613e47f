"""The registry collector against a real registry (SQLite and PostgreSQL): promotions that do
not count the champion a rollback restores, the outbox's delivery backlog, and the age of each
model's oldest queued and running retrain job."""

from __future__ import annotations

from itertools import count

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftd.daemon.metrics.registry import RegistryCollector
from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.registry.outbox import Dispatcher, OutboxRow, RetryPolicy
from driftd.retrain.jobs import JobQueue

SHA = "ab" * 32
Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(reg: Registry, now: float | None = None) -> Samples:
    r = CollectorRegistry()
    r.register(
        RegistryCollector(reg.engine) if now is None else RegistryCollector(reg.engine, lambda: now)
    )
    out: Samples = {}
    for fam in text_string_to_metric_families(generate_latest(r).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _by(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {labels[label]: v for labels, v in samples[name]}


def test_two_promotions_and_a_champion_rollback_count_two_promotions(registry: Registry) -> None:
    registry.register_version("fraud", "file:///a", SHA, 1, "t", stage="staging")
    registry.promote("fraud", 1, "production", "ops")  # promotion 1
    registry.register_version("fraud", "file:///b", SHA, 1, "t", stage="staging")
    registry.promote("fraud", 2, "canary", "ops")
    registry.promote("fraud", 2, "production", "ops")  # promotion 2 (v1 archived)
    serving = registry.rollback("fraud", "ops", "latency", version=2)  # v1 back in production
    assert serving.version == 1 and serving.stage == "production"
    entries = [e for e in registry.history("fraud") if e.kind == "stage" and e.name == "production"]
    assert len(entries) == 3, "three entries into production: two promotions and a restore"
    f = _scrape(registry)
    assert f["driftd_promotions_total"] == [({"model": "fraud"}, 2.0)]
    assert f["driftd_rollbacks_total"] == [({"model": "fraud"}, 1.0)]


def test_a_canary_rollback_counts_no_promotion(registry: Registry) -> None:
    registry.register_version("fraud", "file:///a", SHA, 1, "t", stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    registry.register_version("fraud", "file:///b", SHA, 1, "t", stage="staging")
    registry.promote("fraud", 2, "canary", "ops")
    registry.rollback("fraud", "ops", "errors")  # the canary: the champion never left
    registry.register_version("other", "file:///o", SHA, 1, "t")  # never promoted
    f = _scrape(registry)
    assert _by(f, "driftd_promotions_total", "model") == {"fraud": 1.0, "other": 0.0}
    assert _by(f, "driftd_rollbacks_total", "model") == {"fraud": 1.0, "other": 0.0}


class _Target:
    """An outbox target that accepts every row, or fails every one."""

    def __init__(self, name: str, fail: bool, max_attempts: int = 8) -> None:
        self.name = name
        self.fail = fail
        self.policy = RetryPolicy(max_attempts=max_attempts, backoff_s=0.0, max_backoff_s=0.0)
        self.sent: list[int] = []

    def wants(self, event: str) -> bool:
        return True

    def send(self, row: OutboxRow) -> None:
        if self.fail:
            raise ConnectionError("receiver down")
        self.sent.append(row.id)


def _outbox(reg: Registry) -> tuple[int, float]:
    with reg.engine.connect() as conn:
        n, first = conn.execute(
            sa.select(sa.func.count(), sa.func.min(t.outbox.c.created_at))
        ).one()
    return int(n), float(first)


def test_outbox_events_by_state_and_the_oldest_pending_age(registry: Registry) -> None:
    registry.register_version("fraud", "file:///a", SHA, 1, "t", stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    total, first = _outbox(registry)
    assert total >= 3
    f = _scrape(registry, now=first + 50)
    # No delivery target has a cursor: nothing waits for delivery.
    assert _by(f, "driftd_outbox_events", "state") == {
        "pending": 0.0, "delivered": float(total), "dead": 0.0,
    }  # fmt: skip
    assert f["driftd_outbox_oldest_pending_age_seconds"] == [({}, 0.0)]

    ticks = count(start=first + 1000, step=1000)  # every attempt finds the backoff over
    ok, down = _Target("ok", fail=False), _Target("down", fail=True)
    Dispatcher(registry.engine, [ok, down], clock=lambda: float(next(ticks))).run_once()
    assert len(ok.sent) == total  # one target has everything; the other nothing yet
    f = _scrape(registry, now=first + 50)
    assert _by(f, "driftd_outbox_events", "state") == {
        "pending": float(total), "delivered": 0.0, "dead": 0.0,
    }  # fmt: skip
    assert f["driftd_outbox_oldest_pending_age_seconds"] == [({}, 50.0)]

    # The failing target gives up on its first row: dead; the rest still wait for it.
    doomed = _Target("down", fail=True, max_attempts=1)
    Dispatcher(registry.engine, [ok, doomed], clock=lambda: float(next(ticks))).run_once()
    with registry.engine.connect() as conn:
        second = conn.execute(
            sa.select(t.outbox.c.created_at).order_by(t.outbox.c.id).offset(1).limit(1)
        ).scalar_one()
    f = _scrape(registry, now=first + 50)
    assert _by(f, "driftd_outbox_events", "state") == {
        "pending": float(total - 1), "delivered": 0.0, "dead": 1.0,
    }  # fmt: skip
    assert f["driftd_outbox_oldest_pending_age_seconds"] == [({}, first + 50 - second)]

    back = _Target("down", fail=False)
    Dispatcher(registry.engine, [ok, back], clock=lambda: float(next(ticks))).run_once()
    f = _scrape(registry, now=first + 50)
    assert _by(f, "driftd_outbox_events", "state") == {
        "pending": 0.0, "delivered": float(total - 1), "dead": 1.0,
    }  # fmt: skip
    assert f["driftd_outbox_oldest_pending_age_seconds"] == [({}, 0.0)]


def test_the_oldest_queued_and_running_job_ages_per_model(registry: Registry) -> None:
    registry.register_version("idle", "file:///i", SHA, 1, "t")  # no job
    now = [1000.0]
    queue = JobQueue(registry.engine, clock=lambda: now[0])
    spec = {"entry": "x:y", "params": {}}
    queue.submit("fraud", {"kind": "manual", "key": "a"}, spec)  # queued at 1000
    now[0] = 1100.0
    job = queue.claim("w1", lease_s=600)  # running since 1100
    assert job is not None and job.model == "fraud"
    now[0] = 1300.0
    queue.submit("fraud", {"kind": "manual", "key": "b"}, spec)  # queued behind it, at 1300
    f = _scrape(registry, now=2000.0)
    ages = {
        (lab["model"], lab["state"]): v for lab, v in f["driftd_retrain_job_oldest_age_seconds"]
    }
    assert ages == {
        ("fraud", "queued"): 700.0,
        ("fraud", "running"): 900.0,
        ("idle", "queued"): 0.0,
        ("idle", "running"): 0.0,
    }
    assert queue.succeed(job.id, "w1", None)
    f = _scrape(registry, now=2000.0)
    ages = {
        (lab["model"], lab["state"]): v for lab, v in f["driftd_retrain_job_oldest_age_seconds"]
    }
    assert ages[("fraud", "running")] == 0.0 and ages[("fraud", "queued")] == 700.0
