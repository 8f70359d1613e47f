"""AlarmLog: a model's alarms kept in the checkpoint, bounded, merged over partitions."""

from __future__ import annotations

from driftd.contracts.monitor import DriftDetected
from driftd.daemon import state_codec
from driftd.daemon.alarm_log import AlarmLog, merged


def alarm(
    ts: float, stream: str = "score", kind: str = "drift", version: str = "1", stat: float = 1.0
) -> DriftDetected:
    return DriftDetected("m", version, stream, "ADWIN", kind, ts, stat, 0.5)


def test_keeps_the_last_alarms_per_stream_and_kind_and_counts_them_all() -> None:
    log = AlarmLog("m", keep=3)
    log.record(alarm(t) for t in range(10))
    log.record([alarm(100.0, kind="warning"), alarm(5.0, stream="error")])
    kept = merged([log]).recent
    drift_score = [a.ts for a in kept if a.stream == "score" and a.kind == "drift"]
    assert drift_score == [7.0, 8.0, 9.0]  # a burst of one kind does not push out the others
    assert {(a.stream, a.kind) for a in kept} == {
        ("score", "drift"),
        ("score", "warning"),
        ("error", "drift"),
    }
    assert log.totals[("1", "score", "ADWIN", "drift")] == 10
    assert log.totals[("1", "score", "ADWIN", "warning")] == 1
    assert log.last[("1", "score", "ADWIN")].ts == 100.0  # the warning fired last


def test_round_trips_through_the_state_codec() -> None:
    log = AlarmLog("m", keep=2)
    log.record([alarm(1.0), alarm(2.0, version="2", stat=3.5), alarm(3.0), alarm(4.0)])
    blob = state_codec.dumps("t", 1, log.state_dict())
    back = AlarmLog("m", keep=2)
    back.load_state_dict(state_codec.loads(blob, "t", 1))
    assert merged([back]) == merged([log])
    assert back.last[("2", "score", "ADWIN")].statistic == 3.5
    assert sum(back.totals.values()) == 4
    back.record([alarm(5.0)])  # keeps its bound after a restore
    assert [a.ts for a in merged([back]).recent] == [4.0, 5.0]


def test_merges_partitions_by_event_time() -> None:
    a, b = AlarmLog("m"), AlarmLog("m")
    a.record([alarm(10.0, stat=1.0), alarm(30.0, stat=3.0)])
    b.record([alarm(20.0, stat=2.0)])
    out = merged([a, b])
    assert [x.ts for x in out.recent] == [10.0, 20.0, 30.0]
    assert out.totals[("m", "1", "score", "ADWIN", "drift")] == 3
    assert out.last[("m", "1", "score", "ADWIN")].statistic == 3.0
    # The latest in event time wins, whichever partition holds it.
    assert merged([b, a]).last == out.last
