"""Manual control of a model's rollout: pause, resume, promote now, abort now.

Each command is one audited registry write (``Registry.write``): the audit record, the outbox
event, the registry change (stage, traffic) and the rollout row's new state commit together or
not at all. The row is what every daemon's controller reads on each tick, so a pause survives a
restart and only the leader's controller honours it; promote and abort end the rollout
themselves and bump its sequence number, so a controller that decided on the row it read
before writes nothing and acts on nothing (``RolloutStore.save``'s ``expect_seq``). Promote
respects the production gate (approvals) like ``driftd registry promote``; abort, like a
rollback, never waits for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from driftd.registry.deployments import current_split, replace_split
from driftd.registry.errors import Conflict, InvalidRequest
from driftd.registry.names import Stage
from driftd.registry.registry import Registry
from driftd.registry.rows import alias_map, find_model, find_version
from driftd.registry.stages import set_stage, transition
from driftd.registry.writer import Writer
from driftd.rollout.machine import ACTIVE, PROMOTED, ROLLED_BACK
from driftd.rollout.store import rollouts

Command = Literal["pause", "resume", "promote", "abort"]
COMMANDS: tuple[Command, ...] = ("pause", "resume", "promote", "abort")


class NoActiveRollout(Conflict):
    """The model has no rollout in progress to control (HTTP 409)."""


@dataclass(frozen=True)
class ControlResult:
    """What a manual command did: ``changed`` is False for a pause of a paused rollout (or a
    resume of a running one), which writes nothing."""

    command: str
    model: str
    rollout: str
    canary: int
    champion: int
    phase: str
    paused: bool
    changed: bool
    actor: str
    reason: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the CLI's and the API's answer)."""
        return dict(self.__dict__)


def _active(conn: sa.Connection, model: str) -> Any:
    row = conn.execute(
        sa.select(rollouts)
        .where((rollouts.c.model == model) & rollouts.c.phase.in_(ACTIVE))
        .order_by(rollouts.c.started_at.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NoActiveRollout(f"model {model!r} has no rollout in progress")
    return row


def _promote_now(w: Writer, model_id: int, model: str, row: Any, did: str, reason: str) -> None:
    """The canary to production (its gate applies) with all the traffic."""
    transition(w, model_id, model, int(row.canary), Stage.PRODUCTION, reason)
    replace_split(w, model_id, model, {str(row.canary): 1.0}, reason, did)


def _abort_now(w: Writer, model_id: int, model: str, row: Any, did: str, reason: str) -> None:
    """The canary rolled back, all the traffic to the champion; announced as a rollback."""
    champion = alias_map(w.conn, model_id).get("champion", int(row.champion))
    set_stage(w, model_id, model, int(row.canary), Stage.ROLLED_BACK, reason)
    split = current_split(w.conn, model_id)
    if split and str(row.canary) in split:
        replace_split(w, model_id, model, {str(champion): 1.0}, reason, did)
    body = {"version": int(row.canary), "serving": champion, "reason": reason}
    w.event("rollback", model, {**body, "evidence": {"manual": True, "verdict": row.verdict}})


def control(
    registry: Registry,
    model: str,
    command: Command,
    actor: str,
    reason: str = "",
    request_id: str | None = None,
) -> ControlResult:
    """Apply ``command`` to ``model``'s rollout in progress.

    :raises NoActiveRollout: no rollout in progress.
    :raises GateNotSatisfied: promote: the production gate's approvals are missing.
    :raises Conflict: the controller is carrying out a decision of its own (retry), or the
        canary is no longer in the canary stage.
    """
    if command not in COMMANDS:
        raise InvalidRequest(f"unknown rollout command {command!r}; one of {', '.join(COMMANDS)}")
    payload = {"model": model, "command": command, "reason": reason}

    def change(w: Writer) -> dict[str, Any]:
        model_id = find_model(w.conn, model, lock=True)
        row = _active(w.conn, model)
        paused, phase, seq = bool(row.paused), str(row.phase), int(row.seq)
        note = {"command": command, "actor": w.actor, "reason": reason, "at": w.now}
        values: dict[str, Any] = {"control": note, "updated_at": w.now}
        if command in ("pause", "resume"):
            want = command == "pause"
            if paused == want:  # nothing to do: no record, no event
                return _answer(row, phase, paused, False, w, reason, command)
            values["paused"] = want
        else:
            pending = row.pending or {}
            if pending and pending.get("kind") != "promote":
                raise Conflict(
                    f"the controller is carrying out its {pending.get('kind')} decision on "
                    f"{model}'s rollout; retry in a moment"
                )
            version = find_version(w.conn, model_id, model, int(row.canary))
            if version.stage != Stage.CANARY.value:
                raise Conflict(
                    f"{model}/{row.canary} is in stage {version.stage}, not canary: the rollout "
                    "has moved on; see driftd rollout status"
                )
            did = f"{row.id}:{seq}"
            if command == "promote":
                _promote_now(w, model_id, model, row, did, reason or "promoted by hand")
                phase = PROMOTED
            else:
                _abort_now(w, model_id, model, row, did, reason or "aborted by hand")
                phase = ROLLED_BACK
            values.update(phase=phase, seq=seq + 1, pending=None, paused=False)
            paused = False
        done = w.conn.execute(
            rollouts.update()
            .where((rollouts.c.id == row.id) & (rollouts.c.seq == seq))
            .values(**values)
        )
        if done.rowcount != 1:
            raise Conflict(f"{model}'s rollout moved on while this command ran; retry")
        old = {"phase": row.phase, "paused": bool(row.paused)}
        new = {"phase": phase, "paused": values.get("paused", paused), "rollout": row.id}
        w.audit(f"rollout.{command}", f"{model}/{row.canary}", old, new, reason)
        w.event("rollout_control", model, {"rollout": row.id, **note, "phase": phase})
        return _answer(row, phase, bool(new["paused"]), True, w, reason, command)

    answer = registry.write(actor, f"rollout.{command}", payload, request_id, change)
    return ControlResult(**answer)


def _answer(
    row: Any, phase: str, paused: bool, changed: bool, w: Writer, reason: str, command: str
) -> dict[str, Any]:
    return {
        "command": command,
        "model": row.model,
        "rollout": row.id,
        "canary": int(row.canary),
        "champion": int(row.champion),
        "phase": phase,
        "paused": paused,
        "changed": changed,
        "actor": w.actor,
        "reason": reason,
        "at": w.now,
    }
