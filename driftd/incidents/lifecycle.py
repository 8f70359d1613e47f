"""An incident's life as pure transitions: alarms open, extend or reopen it; people acknowledge
and resolve it; a quiet stream resolves it. No I/O and no clock: times are event times
(alarms) or the caller's ``now`` (people).

- **Dedupe**: one incident per (model, version, stream) at a time; an alarm on an open or
  acknowledged incident's stream extends it (count, last alarm, detectors) instead of opening
  another.
- **Cooldown**: an alarm within ``cooldown_s`` of its stream's incident being resolved reopens
  that incident (``reopened`` counts it) rather than paging anew.
- **Grouping**: a new incident joins the group of the model's most recent unresolved incident
  whose last alarm is within ``group_window_s``: forty alarms of one drifted model become one
  group of incidents, one per stream.
- **Quiet resolve**: an unresolved incident whose last alarm is ``resolve_after_s`` behind the
  event clock is resolved with resolution ``quiet``.
- **Idempotence**: an alarm at or before the incident's last alarm (same time and detector or
  earlier) changes nothing, so replaying alarms after a crash counts none twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Literal

from driftd.contracts.monitor import DriftDetected

State = Literal["open", "acknowledged", "resolved"]
STATES: tuple[State, ...] = ("open", "acknowledged", "resolved")
Resolution = Literal["", "manual", "quiet"]
Change = Literal["opened", "extended", "reopened", "acknowledged", "resolved"]


class TransitionError(ValueError):
    """A person asked for a transition the incident's state does not allow."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How alarms are grouped into incidents (seconds of event time)."""

    cooldown_s: float = 3600.0
    group_window_s: float = 900.0
    resolve_after_s: float = 86_400.0


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident: what fired, since when, and who did what about it."""

    id: str
    model: str
    version: str
    stream: str
    group: str  # the id of the first incident of its group
    state: State
    opened_ts: float  # event time of the first alarm
    last_alarm_ts: float
    last_detector: str  # with last_alarm_ts: the idempotence key of the last alarm counted
    alarms: int
    detectors: tuple[str, ...]
    reference: str
    statistic: float
    threshold: float
    reopened: int = 0
    acknowledged_by: str = ""
    acknowledged_at: float | None = None
    resolved_by: str = ""
    resolved_at: float | None = None  # event time (quiet) or wall time (a person)
    resolution: Resolution = ""
    note: str = ""
    revision: int = 1  # bumped by every change

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.version, self.stream)


def incident_id(model: str, version: str, stream: str, opened_ts: float) -> str:
    """A stable id: the same alarm opens the same incident in every process and replay."""
    digest = hashlib.sha256(f"{model}\0{version}\0{stream}\0{opened_ts!r}".encode()).hexdigest()
    return f"inc-{digest[:16]}"


def _bump(inc: Incident, **changes: object) -> Incident:
    return dataclasses.replace(inc, revision=inc.revision + 1, **changes)  # type: ignore[arg-type]


def on_alarm(
    current: Incident | None,
    alarm: DriftDetected,
    policy: Policy,
    group_of: Incident | None = None,
) -> tuple[Incident, Change] | None:
    """What ``alarm`` does to its stream's latest incident ``current`` (None: there is none):
    the incident after it and the change, or None when it changes nothing (a replay).
    ``group_of`` is the model's latest unresolved incident of another stream, if any."""
    if current is not None and current.key != (alarm.model, alarm.version, alarm.stream):
        raise ValueError(f"alarm on {alarm.stream!r} given incident {current.id} of another key")
    if current is not None and (alarm.ts, alarm.detector) <= (
        current.last_alarm_ts,
        current.last_detector,
    ):
        return None
    if current is not None and current.state != "resolved":
        return _extend(current, alarm), "extended"
    if current is not None and alarm.ts - _resolved_event_ts(current) <= policy.cooldown_s:
        return (
            dataclasses.replace(
                _extend(current, alarm),
                state="open",
                reopened=current.reopened + 1,
                resolution="",
                resolved_by="",
                resolved_at=None,
                acknowledged_by="",
                acknowledged_at=None,
            ),
            "reopened",
        )
    new_id = incident_id(alarm.model, alarm.version, alarm.stream, alarm.ts)
    group = new_id
    if (
        group_of is not None
        and group_of.state != "resolved"
        and group_of.model == alarm.model
        and alarm.ts - group_of.last_alarm_ts <= policy.group_window_s
    ):
        group = group_of.group
    return (
        Incident(
            id=new_id,
            model=alarm.model,
            version=alarm.version,
            stream=alarm.stream,
            group=group,
            state="open",
            opened_ts=alarm.ts,
            last_alarm_ts=alarm.ts,
            last_detector=alarm.detector,
            alarms=1,
            detectors=(alarm.detector,),
            reference=alarm.reference,
            statistic=alarm.statistic,
            threshold=alarm.threshold,
        ),
        "opened",
    )


def _resolved_event_ts(inc: Incident) -> float:
    """When a resolved incident ended, in event time: the clock that resolved it as quiet, or
    for a person (who acts on the wall clock) its last alarm: the only event time it has."""
    if inc.resolution == "quiet" and inc.resolved_at is not None:
        return inc.resolved_at
    return inc.last_alarm_ts


def _extend(inc: Incident, alarm: DriftDetected) -> Incident:
    detectors = (
        inc.detectors if alarm.detector in inc.detectors else (*inc.detectors, alarm.detector)
    )
    return _bump(
        inc,
        last_alarm_ts=alarm.ts,
        last_detector=alarm.detector,
        alarms=inc.alarms + 1,
        detectors=detectors,
        reference=alarm.reference or inc.reference,
        statistic=alarm.statistic,
        threshold=alarm.threshold,
    )


def acknowledge(inc: Incident, actor: str, now: float, note: str = "") -> Incident:
    """open -> acknowledged; acknowledging an acknowledged incident again changes nothing."""
    if inc.state == "resolved":
        raise TransitionError(f"incident {inc.id} is resolved; it cannot be acknowledged")
    if inc.state == "acknowledged":
        return inc
    return _bump(
        inc, state="acknowledged", acknowledged_by=actor, acknowledged_at=now, note=note or inc.note
    )


def resolve(inc: Incident, actor: str, now: float, note: str = "") -> Incident:
    """open or acknowledged -> resolved by a person; resolving it again changes nothing."""
    if inc.state == "resolved":
        return inc
    return _bump(
        inc,
        state="resolved",
        resolved_by=actor,
        resolved_at=now,
        resolution="manual",
        note=note or inc.note,
    )


def quiet(inc: Incident, clock: float, policy: Policy) -> Incident | None:
    """The incident resolved as quiet when its last alarm is ``resolve_after_s`` of event
    time behind ``clock``; None when it stays as it is."""
    if inc.state == "resolved" or clock - inc.last_alarm_ts < policy.resolve_after_s:
        return None
    return _bump(inc, state="resolved", resolved_by="driftd", resolved_at=clock, resolution="quiet")


Key = tuple[str, str, str]  # (model, version, stream)


def alarm_order(a: DriftDetected) -> tuple[float, str, str, str, str]:
    """The order alarms are folded in: event time, then model, version, stream, detector."""
    return (a.ts, a.model, a.version, a.stream, a.detector)


def apply_alarms(
    latest: dict[Key, Incident], alarms: list[DriftDetected], policy: Policy
) -> list[tuple[Incident, Change]]:
    """Fold ``alarms`` (taken in event-time order) into ``latest``, each stream's latest
    incident, updated in place; return every change in order (a replayed alarm makes none).
    Grouping looks at the model's other unresolved incidents in ``latest``."""
    out: list[tuple[Incident, Change]] = []
    for alarm in sorted(alarms, key=alarm_order):
        key = (alarm.model, alarm.version, alarm.stream)
        peers = [
            i
            for k, i in latest.items()
            if k != key and i.model == alarm.model and i.state != "resolved"
        ]
        group_of = max(peers, key=lambda i: (i.last_alarm_ts, i.id), default=None)
        got = on_alarm(latest.get(key), alarm, policy, group_of)
        if got is not None:
            latest[key] = got[0]
            out.append(got)
    return out
