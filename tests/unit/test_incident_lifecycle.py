"""Incident lifecycle as pure logic: dedupe, cooldown, grouping, acknowledge, resolve, quiet
resolve, and replays that count nothing twice (hypothesis for the invariants)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftd.contracts.monitor import DriftDetected
from driftd.incidents.lifecycle import (
    Change,
    Incident,
    Key,
    Policy,
    TransitionError,
    acknowledge,
    alarm_order,
    apply_alarms,
    quiet,
    resolve,
)

POLICY = Policy(cooldown_s=100.0, group_window_s=50.0, resolve_after_s=1_000.0)


def alarm(
    ts: float, stream: str = "error", model: str = "m", detector: str = "ADWIN"
) -> DriftDetected:
    return DriftDetected(model, "1", stream, detector, "drift", ts, 1.0, 0.5, "pinned:[0,1)")


def fold(
    alarms: list[DriftDetected], latest: dict[Key, Incident] | None = None
) -> dict[Key, Incident]:
    book: dict[Key, Incident] = {} if latest is None else latest
    apply_alarms(book, alarms, POLICY)
    return book


def test_repeated_alarms_on_one_stream_are_one_incident() -> None:
    book = fold([alarm(t) for t in (10.0, 20.0, 30.0)] + [alarm(30.0, detector="CUSUM")])
    (inc,) = book.values()
    assert (inc.state, inc.alarms, inc.opened_ts, inc.last_alarm_ts) == ("open", 4, 10.0, 30.0)
    assert inc.detectors == ("ADWIN", "CUSUM") and inc.revision == 4


def test_an_alarm_within_the_cooldown_reopens_the_resolved_incident_after_it_a_new_one() -> None:
    book = fold([alarm(10.0)])
    key = ("m", "1", "error")
    book[key] = resolve(book[key], "alice", now=1e9, note="fixed upstream")
    first = book[key].id
    changes = apply_alarms(book, [alarm(100.0)], POLICY)  # 90 s after its last alarm
    assert [(i.id, c, i.state, i.reopened) for i, c in changes] == [(first, "reopened", "open", 1)]
    book[key] = resolve(book[key], "alice", now=1e9)
    changes = apply_alarms(book, [alarm(250.0)], POLICY)  # 150 s after: a new incident
    assert [c for _, c in changes] == ["opened"] and changes[0][0].id != first


def test_incidents_of_one_model_close_in_time_share_a_group() -> None:
    book = fold([alarm(10.0, "feature:a"), alarm(40.0, "feature:b"), alarm(200.0, "feature:c")])
    a, b, c = (book[("m", "1", s)] for s in ("feature:a", "feature:b", "feature:c"))
    assert a.group == b.group == a.id  # b opened 30 s after a's last alarm
    assert c.group == c.id  # 160 s after b's last alarm: its own group
    other = fold([alarm(12.0, "error", model="n")], dict(book))[("n", "1", "error")]
    assert other.group == other.id  # another model never joins


def test_a_quiet_stream_resolves_and_a_late_alarm_within_the_cooldown_reopens() -> None:
    book = fold([alarm(10.0)])
    key = ("m", "1", "error")
    assert quiet(book[key], 1_009.0, POLICY) is None
    book[key] = done = quiet(book[key], 1_010.0, POLICY) or book[key]
    assert (done.state, done.resolution, done.resolved_at) == ("resolved", "quiet", 1_010.0)
    changes = apply_alarms(book, [alarm(1_100.0)], POLICY)
    assert [c for _, c in changes] == ["reopened"]


def test_people_acknowledge_and_resolve_and_repeats_change_nothing() -> None:
    (inc,) = fold([alarm(10.0)]).values()
    acked = acknowledge(inc, "bob", now=5.0, note="looking")
    assert (acked.state, acked.acknowledged_by, acked.note) == ("acknowledged", "bob", "looking")
    assert acknowledge(acked, "carol", now=6.0) is acked
    done = resolve(acked, "bob", now=7.0)
    assert (done.state, done.resolution, done.revision) == ("resolved", "manual", 3)
    assert resolve(done, "bob", now=8.0) is done
    with pytest.raises(TransitionError, match="resolved"):
        acknowledge(done, "bob", now=9.0)


alarms_st = st.lists(
    st.builds(
        alarm,
        ts=st.integers(0, 3_000).map(float),
        stream=st.sampled_from(["error", "feature:a", "feature:b"]),
        model=st.sampled_from(["m", "n"]),
        detector=st.sampled_from(["ADWIN", "CUSUM"]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(alarms_st, st.integers(0, 40), st.lists(st.integers(0, 3_000), max_size=5))
def test_every_alarm_counts_once_whatever_is_replayed(
    alarms: list[DriftDetected], cut: int, quiet_at: list[int]
) -> None:
    """Exactly once: folding a prefix, then everything again (a crash before the save and its
    replay), leaves the same incidents as one clean fold; revisions only grow; a quiet
    resolve leaves unresolved only incidents alarmed within ``resolve_after_s``."""
    ordered = sorted(alarms, key=alarm_order)
    book: dict[Key, Incident] = {}
    apply_alarms(book, ordered[:cut], POLICY)
    apply_alarms(book, ordered, POLICY)
    changes = apply_alarms({}, ordered, POLICY)
    assert book == _latest(changes)
    revisions: dict[str, int] = {}
    for inc, _ in changes:
        assert inc.revision > revisions.get(inc.id, 0)
        revisions[inc.id] = inc.revision
    for t in sorted(quiet_at):
        for k, inc in list(book.items()):
            book[k] = quiet(inc, float(t), POLICY) or inc
    if quiet_at:
        latest = max(quiet_at)
        for inc in book.values():
            stale = latest - inc.last_alarm_ts >= POLICY.resolve_after_s
            assert (inc.state == "resolved") == stale


def _latest(changes: list[tuple[Incident, Change]]) -> dict[Key, Incident]:
    out: dict[Key, Incident] = {}
    for inc, _ in changes:
        out[inc.key] = inc
    return out


@settings(max_examples=200, deadline=None)
@given(alarms_st)
def test_alarms_on_one_stream_within_the_windows_are_one_incident(
    alarms: list[DriftDetected],
) -> None:
    """Without people or quiet resolves, each stream has exactly one incident, holding every
    distinct alarm of that stream."""
    book = fold(alarms)
    for key, inc in book.items():
        mine = {(a.ts, a.detector) for a in alarms if (a.model, a.version, a.stream) == key}
        assert inc.alarms == len(mine) and inc.state == "open" and inc.reopened == 0
        assert inc.opened_ts == min(t for t, _ in mine)
