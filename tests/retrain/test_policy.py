"""Trigger policies: alarm filters, minimum new rows, cooldown, cron schedules."""

from __future__ import annotations

import datetime as dt

import pytest

from driftd.contracts.monitor import DriftDetected
from driftd.retrain.policy import TriggerPolicy, alarm_trigger, schedule_trigger

UTC = dt.UTC


def alarm(kind: str = "drift", detector: str = "psi", stream: str = "predictions") -> DriftDetected:
    return DriftDetected("m", "v1", stream, detector, kind, 10.0, 0.5, 0.2)


def test_alarm_filters() -> None:
    p = TriggerPolicy(kinds=("drift",), detectors=("psi", "ks"), streams=("predictions",))
    assert p.should_retrain(alarm(), 0, None, 0).ok
    no = p.should_retrain(alarm(kind="warning"), 0, None, 0)
    assert not no.ok and "kind 'warning'" in no.reason
    assert "detector 'adwin'" in p.should_retrain(alarm(detector="adwin"), 0, None, 0).reason
    assert "stream 'labels'" in p.should_retrain(alarm(stream="labels"), 0, None, 0).reason
    anything = TriggerPolicy(kinds=("drift", "warning"))
    assert anything.should_retrain(alarm(kind="warning", detector="x", stream="y"), 0, None, 0).ok


def test_min_new_rows_and_cooldown() -> None:
    p = TriggerPolicy(min_new_rows=1000, cooldown_s=600)
    few = p.should_retrain(alarm(), 999, None, 0)
    assert not few.ok and "999 new labeled rows, fewer than 1000" in few.reason
    soon = p.should_retrain(alarm(), 5000, last_job_at=1000.0, now=1599.0)
    assert not soon.ok and "cooldown" in soon.reason and "1600" in soon.reason
    assert p.should_retrain(alarm(), 5000, last_job_at=1000.0, now=1600.0).ok
    assert p.should_retrain(None, 1000, None, 0).reason.startswith("schedule: retrain")


def test_cron_next_fire_times() -> None:
    p = TriggerPolicy(cron="0 3 * * mon")  # Mondays 03:00 UTC
    after = dt.datetime(2025, 1, 1, 12, tzinfo=UTC)  # a Wednesday
    first = p.next_scheduled(after)
    assert first == dt.datetime(2025, 1, 6, 3, tzinfo=UTC)
    assert first is not None and p.next_scheduled(first) == dt.datetime(2025, 1, 13, 3, tzinfo=UTC)
    assert TriggerPolicy().next_scheduled(after) is None
    with pytest.raises(ValueError, match="aware"):
        p.next_scheduled(dt.datetime(2025, 1, 1))


@pytest.mark.parametrize("expr", ["0 3 * *", "61 * * * *", "every day"])
def test_invalid_cron_is_refused_naming_the_expression(expr: str) -> None:
    with pytest.raises(ValueError, match="invalid cron expression") as err:
        TriggerPolicy(cron=expr)
    assert repr(expr) in str(err.value)


def test_invalid_fields() -> None:
    with pytest.raises(ValueError, match="unknown alarm kinds"):
        TriggerPolicy(kinds=("drift", "panic"))
    with pytest.raises(ValueError, match="max_attempts"):
        TriggerPolicy(max_attempts=0)
    with pytest.raises(ValueError, match=">= 0"):
        TriggerPolicy(cooldown_s=-1)


def test_triggers_name_their_cause() -> None:
    t = alarm_trigger(alarm())
    assert t["kind"] == "alarm" and t["key"]["ts"] == 10.0 and t["key"]["detector"] == "psi"
    fire = dt.datetime(2025, 1, 6, 3, tzinfo=UTC)
    assert schedule_trigger(fire) == {"kind": "schedule", "key": "2025-01-06T03:00:00+00:00"}
