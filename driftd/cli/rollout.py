"""``driftd rollout``: where a model's canary stands and why, and manual control of it —
``pause``, ``resume``, ``promote`` (now, gated) and ``abort`` (roll back now).

The commands write the rollout's row in the registry database (``driftd.rollout.manual``),
which the running daemon's controller reads on every tick: a pause holds until resumed, across
restarts, and only the leader acts on it. Each command is recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from driftd.cli.exitcodes import Exit
from driftd.cli.options import actor_option, db_options, json_option
from driftd.cli.output import echo_json, say
from driftd.cli.output import iso as output_iso

if TYPE_CHECKING:
    from driftd.rollout.evidence import SLO


class _Failed(click.ClickException):
    """A driftd error, shown as ``Error: <message>``: exit ERROR (1)."""

    exit_code = int(Exit.ERROR)


class _Refused(click.ClickException):
    """A gate refused the command: exit REFUSED (3)."""

    exit_code = int(Exit.REFUSED)


def iso(ts: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC; None for none (``driftd.cli.output.iso``)."""
    return None if ts is None else output_iso(ts)


@click.group()
def rollout() -> None:
    """Canary rollouts: where each model's stands, the evidence behind its last verdict, and
    manual control (pause, resume, promote, abort)."""


def _slo(config: Path | None, model: str) -> SLO | None:
    """The model's rollout SLO from the config (None: no config or no rollout section)."""
    if config is None:
        return None
    from driftd.config import load_settings
    from driftd.rollout.controller import slo_of

    ms = load_settings(config).models.get(model)
    if ms is None or ms.rollout is None:
        return None
    return slo_of(ms.rollout)


def status_document(row: Any, weights: dict[int, float], slo: SLO | None) -> dict[str, Any]:
    """The rollout's state as JSON-able data, times in ISO 8601, each reason with its words."""
    from driftd.rollout.explain import describe

    verdict = dict(row.verdict or {})
    if verdict:
        verdict["reasons"] = [{**r, "text": describe(r, slo)} for r in verdict.get("reasons", [])]
    control = dict(row.control or {})
    if "at" in control:
        control["at"] = iso(control["at"])
    return {
        "id": row.id,
        "model": row.model,
        "phase": row.phase,
        "paused": bool(row.paused),
        "control": control or None,
        "canary": row.canary,
        "champion": row.champion,
        "step": row.step,
        "steps": row.steps,
        "traffic": {str(v): w for v, w in sorted(weights.items())},
        "pending": row.pending,
        "verdict": verdict or None,
        "started_at": iso(row.started_at),
        "step_started_at": iso(row.step_started_at),
        "updated_at": iso(row.updated_at),
    }


def status_lines(doc: dict[str, Any]) -> list[str]:
    """The human form of ``status_document``."""
    split = ", ".join(f"v{v} {w:.0%}" for v, w in doc["traffic"].items())
    out = [f"{doc['id']}: v{doc['canary']} vs champion v{doc['champion']}, {doc['phase']}"]
    if doc["paused"]:
        c = doc["control"] or {}
        why = f": {c['reason']}" if c.get("reason") else ""
        out.append(
            f"  PAUSED by {c.get('actor', '?')} at {c.get('at', '?')}{why} "
            "(no automatic step until driftd rollout resume)"
        )
    elif doc["control"]:
        c = doc["control"]
        out.append(f"  last manual command: {c['command']} by {c['actor']} at {c['at']}")
    out.append(
        f"  started {doc['started_at']}; step {doc['step'] + 1} of {len(doc['steps'])}; "
        f"traffic {split or 'none'}"
    )
    if doc["pending"]:
        out.append(f"  pending: {doc['pending']['kind']} ({doc['pending']['reason']})")
    verdict = doc["verdict"] or {}
    if verdict.get("plan"):
        out.append(f"  plan: {verdict['plan']['summary']}")
    if verdict:
        out.append(f"  last verdict: {verdict['decision']} by {verdict['rule']}")
        for r in verdict.get("reasons", []):
            out.append(f"    {'✓' if r['fired'] else '·'} {r['text']}")
    return out


@rollout.command("status")
@click.argument("model")
@db_options
@json_option
def rollout_status(model: str, config: Path | None, db: str | None, as_json: bool) -> None:
    """The model's latest rollout: phase, paused or not, step, traffic, and the last verdict's
    checks in words (what each is tested against and what crossing its bound means). With
    --config, the model's SLO margins are named too. Exits 4 (HALTED) when the rollout is
    halted or was rolled back, after printing, so a pipeline can stop on it (as
    ``kubectl argo rollouts status`` does on an aborted rollout); 0 otherwise."""
    from driftd.cli.access import registry_from_options
    from driftd.rollout.machine import HALTED, ROLLED_BACK
    from driftd.rollout.store import RolloutStore

    with registry_from_options(config, db) as reg:
        row = RolloutStore(reg.engine).latest(model)
        weights = reg.traffic(model) if row is not None else {}
    if row is None:
        raise _Failed(f"model {model!r} has had no rollout")
    doc = status_document(row, weights, _slo(config, model))
    if as_json:
        echo_json(doc)
    else:
        for line in status_lines(doc):
            say(line)
    if row.phase in (HALTED, ROLLED_BACK):
        raise SystemExit(int(Exit.HALTED))


@contextmanager
def _refusals() -> Iterator[None]:
    """Gate refusals exit REFUSED (3); no rollout in progress and conflicts exit ERROR (1)."""
    from driftd.registry.errors import Conflict, GateNotSatisfied

    try:
        yield
    except GateNotSatisfied as exc:
        raise _Refused(f"refused: {exc}") from None
    except Conflict as exc:
        raise _Failed(str(exc)) from None


def _control(
    command: str,
    model: str,
    reason: str,
    request_id: str | None,
    config: Path | None,
    db: str | None,
    actor: str,
    as_json: bool,
) -> None:
    from driftd.cli.access import registry_from_options
    from driftd.rollout.manual import control

    with registry_from_options(config, db) as reg, _refusals():
        result = control(reg, model, command, actor, reason, request_id)  # type: ignore[arg-type]
    doc = {**result.to_dict(), "at": iso(result.at)}
    if as_json:
        echo_json(doc)
        return
    if not result.changed:
        state = "paused" if result.paused else "running"
        say(f"{model}: rollout {result.rollout} is already {state}")
        return
    words = {
        "pause": "paused: the controller takes no automatic step until resumed",
        "resume": "resumed: the controller decides again",
        "promote": f"promoted: v{result.canary} is in production with all the traffic",
        "abort": f"aborted: v{result.canary} rolled back, the traffic is on v{result.champion}",
    }
    say(f"{model}: rollout {result.rollout} {words[command]}")


def _common(f: Any) -> Any:
    f = json_option(f)
    f = actor_option(f)
    f = db_options(f)
    f = click.option("--request-id", help="Idempotency key: repeating it does not act twice.")(f)
    f = click.option("--reason", default="", help="Why: recorded in the audit log.")(f)
    return click.argument("model")(f)


def _confirmed(yes: bool, what: str) -> None:
    if not yes:
        raise click.UsageError(f"{what}: confirm with --yes")


@rollout.command("pause")
@_common
def rollout_pause(
    model: str, reason: str, request_id: str | None, config: Path | None, db: str | None,
    actor: str, as_json: bool,
) -> None:  # fmt: skip
    """Pause MODEL's rollout: the controller keeps gathering evidence and verdicts but takes no
    step, promotion or rollback of its own until resumed (a restart keeps the pause). Exit 1
    when no rollout is in progress."""
    _control("pause", model, reason, request_id, config, db, actor, as_json)


@rollout.command("resume")
@_common
def rollout_resume(
    model: str, reason: str, request_id: str | None, config: Path | None, db: str | None,
    actor: str, as_json: bool,
) -> None:  # fmt: skip
    """Resume MODEL's paused rollout: the controller decides again from all the evidence. Exit
    1 when no rollout is in progress."""
    _control("resume", model, reason, request_id, config, db, actor, as_json)


@rollout.command("promote")
@_common
@click.option("--yes", is_flag=True, help="Confirm: skip the remaining steps.")
def rollout_promote(
    model: str, reason: str, request_id: str | None, config: Path | None, db: str | None,
    actor: str, as_json: bool, yes: bool,
) -> None:  # fmt: skip
    """Promote MODEL's canary to production now, skipping the remaining steps; the production
    gate applies (its approvals, as for driftd registry promote). Exit 3 when the gate refuses,
    1 when no rollout is in progress."""
    _confirmed(yes, "promote skips the rollout's remaining steps")
    _control("promote", model, reason, request_id, config, db, actor, as_json)


@rollout.command("abort")
@_common
@click.option("--yes", is_flag=True, help="Confirm: roll the canary back.")
def rollout_abort(
    model: str, reason: str, request_id: str | None, config: Path | None, db: str | None,
    actor: str, as_json: bool, yes: bool,
) -> None:  # fmt: skip
    """Abort MODEL's rollout now: the canary is rolled back and the champion takes all the
    traffic (no gate applies, as for any rollback). Exit 1 when no rollout is in progress."""
    _confirmed(yes, "abort rolls the canary back")
    _control("abort", model, reason, request_id, config, db, actor, as_json)
