"""Trigger policies: which alarms start a retrain, how much new data it needs, the cooldown
between retrains, an optional cron schedule, and the retry budget of the jobs it starts.

Pure: no clock, no I/O, no scheduler thread. Cron fire times come from APScheduler's
``CronTrigger`` so that the daemon and ``driftd`` config validation agree on the syntax.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from driftd.config.sections import cron_trigger
from driftd.contracts.monitor import DriftDetected

ALARM_KINDS = ("drift", "warning")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to retrain, and why (or why not), in words for logs and the API."""

    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class TriggerPolicy:
    """When a model is retrained. Empty ``detectors``/``streams`` mean any."""

    kinds: tuple[str, ...] = ("drift",)
    detectors: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    min_new_rows: int = 0
    cooldown_s: float = 3600.0
    cron: str | None = None
    max_attempts: int = 3
    backoff_s: float = 60.0
    max_backoff_s: float = 3600.0

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(ALARM_KINDS)
        if unknown:
            raise ValueError(f"unknown alarm kinds {sorted(unknown)}; use {list(ALARM_KINDS)}")
        if self.min_new_rows < 0 or self.cooldown_s < 0 or self.backoff_s < 0:
            raise ValueError("min_new_rows, cooldown_s and backoff_s must be >= 0")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, not {self.max_attempts}")
        if self.cron is not None:
            cron_trigger(self.cron)  # fail at configuration time, naming the expression

    def should_retrain(
        self,
        alarm: DriftDetected | None,
        new_rows: int,
        last_job_at: float | None,
        now: float,
    ) -> Decision:
        """Decide for an alarm (or, with ``alarm=None``, a scheduled fire) given the labeled
        rows gathered since the last retrain and when the model's last job ran."""
        if alarm is not None:
            what = f"{alarm.kind} from {alarm.detector} on {alarm.stream}"
            if alarm.kind not in self.kinds:
                return Decision(False, f"{what}: kind {alarm.kind!r} does not trigger")
            if self.detectors and alarm.detector not in self.detectors:
                return Decision(False, f"{what}: detector {alarm.detector!r} does not trigger")
            if self.streams and alarm.stream not in self.streams:
                return Decision(False, f"{what}: stream {alarm.stream!r} does not trigger")
        else:
            what = "schedule"
        if new_rows < self.min_new_rows:
            return Decision(
                False, f"{what}: {new_rows} new labeled rows, fewer than {self.min_new_rows}"
            )
        if last_job_at is not None and now - last_job_at < self.cooldown_s:
            return Decision(
                False,
                f"{what}: cooldown, last job at {last_job_at:.0f}, "
                f"next allowed at {last_job_at + self.cooldown_s:.0f}",
            )
        return Decision(True, f"{what}: retrain ({new_rows} new labeled rows)")

    def next_scheduled(self, after: dt.datetime) -> dt.datetime | None:
        """The first cron fire time strictly after ``after`` (UTC); None without a schedule."""
        if self.cron is None:
            return None
        if after.tzinfo is None:
            raise ValueError("next_scheduled needs an aware datetime")
        nxt = cron_trigger(self.cron).get_next_fire_time(None, after + dt.timedelta(microseconds=1))
        return None if nxt is None else nxt.astimezone(dt.UTC)


def alarm_trigger(alarm: DriftDetected) -> dict[str, Any]:
    """A job trigger for an alarm; its ``key`` names the alarm uniquely, so a replay of the
    same events yields the same job id."""
    key = {
        "model": alarm.model,
        "version": alarm.version,
        "stream": alarm.stream,
        "detector": alarm.detector,
        "kind": alarm.kind,
        "ts": alarm.ts,
    }
    return {
        "kind": "alarm",
        "key": key,
        "statistic": alarm.statistic,
        "threshold": alarm.threshold,
    }


def schedule_trigger(fire_time: dt.datetime) -> dict[str, Any]:
    """A job trigger for a cron fire time (the same fire time, the same job)."""
    return {"kind": "schedule", "key": fire_time.astimezone(dt.UTC).isoformat()}


def manual_trigger(request_id: str) -> dict[str, Any]:
    """A job trigger for an operator's request, keyed by its idempotency id."""
    return {"kind": "manual", "key": request_id}
