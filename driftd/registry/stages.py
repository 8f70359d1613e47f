"""Stages: legal transitions behind their approval gates, promotion, rollback, and the history
of every stage change and alias move.

A stage change closes the version's open history interval, opens the next, and moves the
alias bound to the stage (``champion`` follows production, ``canary`` follows canary).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.aliases import drop_alias, move_alias
from driftd.registry.core import RegistryCore
from driftd.registry.deployments import current_split, replace_split
from driftd.registry.errors import Conflict, GateNotSatisfied, InvalidRequest
from driftd.registry.governance import unmet_for
from driftd.registry.names import STAGE_ALIAS, Stage, allowed_from, is_allowed, parse_stage
from driftd.registry.records import HistoryEntry, VersionInfo
from driftd.registry.rows import alias_map, find_model, find_version, versions_in
from driftd.registry.writer import Writer


def transition(
    w: Writer, model_id: int, model: str, version: int, target: Stage, reason: str
) -> None:
    """Move a version to ``target`` if the move is legal and its gate is met (inside a write);
    entering production archives the version it replaces."""
    row = find_version(w.conn, model_id, model, version)
    src = Stage(row.stage)
    if not is_allowed(src, target):
        raise Conflict(
            f"{model}/{version} cannot move from {src.value} to {target.value}; from "
            f"{src.value} it may move to {', '.join(allowed_from(src))}"
        )
    missing = unmet_for(w.conn, row, target)
    if missing:
        raise GateNotSatisfied(
            f"moving {model}/{version} to {target.value} needs " + "; ".join(missing)
        )
    if target is Stage.CANARY:
        holder = alias_map(w.conn, model_id).get("canary")
        if holder is not None and holder != version:
            raise Conflict(f"{model}/{holder} is already in canary; promote or roll it back first")
    replaced = versions_in(w.conn, model_id, Stage.PRODUCTION)
    # The new stage first: champion then moves straight from the old version to this one.
    set_stage(w, model_id, model, version, target, reason)
    if target is Stage.PRODUCTION:
        for other in replaced:
            if other != version:
                set_stage(w, model_id, model, other, Stage.ARCHIVED, "replaced")
        aliases = alias_map(w.conn, model_id)
        if aliases.get("challenger") == version:
            drop_alias(w, model_id, model, "challenger", "promoted to production")


def set_stage(
    w: Writer, model_id: int, model: str, version: int, stage: Stage, reason: str
) -> None:
    """Change the stage, close and open its history interval, move stage-bound aliases."""
    row = find_version(w.conn, model_id, model, version)
    w.conn.execute(
        t.versions.update()
        .where(t.versions.c.id == row.id)
        .values(stage=stage.value, row_version=row.row_version + 1)
    )
    w.conn.execute(
        t.stage_history.update()
        .where((t.stage_history.c.version_id == row.id) & t.stage_history.c.valid_to.is_(None))
        .values(valid_to=w.now)
    )
    w.conn.execute(
        t.stage_history.insert().values(
            version_id=row.id, stage=stage.value, valid_from=w.now, actor=w.actor, reason=reason
        )
    )
    subject = f"{model}/{version}"
    w.audit("version.stage", subject, {"stage": row.stage}, {"stage": stage.value}, reason)
    w.event(
        "stage_changed",
        model,
        {"version": version, "from": row.stage, "to": stage.value, "reason": reason},
    )
    old_alias = STAGE_ALIAS.get(Stage(row.stage))
    if old_alias is not None and alias_map(w.conn, model_id).get(old_alias) == version:
        drop_alias(w, model_id, model, old_alias, reason)
    new_alias = STAGE_ALIAS.get(stage)
    if new_alias is not None:
        move_alias(w, model_id, model, new_alias, version, reason)


def _previous_holder(conn: sa.Connection, model_id: int, alias: str, current: int) -> int | None:
    """The last version other than ``current`` that held ``alias`` and was not rolled
    back (a rollback never returns to a version that was itself rolled back)."""
    h, v = t.alias_history, t.versions
    found = conn.execute(
        sa.select(h.c.version)
        .join(v, (v.c.model_id == h.c.model_id) & (v.c.version == h.c.version))
        .where(
            (h.c.model_id == model_id)
            & (h.c.alias == alias)
            & (h.c.version != current)
            & (v.c.stage != Stage.ROLLED_BACK.value)
        )
        .order_by(h.c.valid_from.desc(), h.c.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def _rollback_target(model: str, version: int | None, current: Mapping[str, int]) -> int:
    """The version to roll back: ``version``, else the canary, else the champion."""
    if version is not None:
        return version
    target = current.get("canary", current.get("champion"))
    if target is None:
        raise Conflict(f"{model} has neither a canary nor a champion to roll back")
    return target


def _take_out_of_service(
    w: Writer, model_id: int, model: str, target: int, current: Mapping[str, int], reason: str
) -> int:
    """Roll ``target`` back (inside a write); return the version serving in its place."""
    row = find_version(w.conn, model_id, model, target)
    if row.stage == Stage.CANARY.value:
        set_stage(w, model_id, model, target, Stage.ROLLED_BACK, reason)
        return current.get("champion", target)
    if row.stage == Stage.PRODUCTION.value:
        previous = _previous_holder(w.conn, model_id, "champion", target)
        if previous is None:
            raise Conflict(
                f"{model}/{target} has no earlier champion that was not rolled back; "
                "there is nothing to roll back to"
            )
        set_stage(w, model_id, model, previous, Stage.PRODUCTION, reason)
        set_stage(w, model_id, model, target, Stage.ROLLED_BACK, reason)
        return previous
    raise Conflict(
        f"{model}/{target} is in stage {row.stage}; only a canary or production "
        "version can be rolled back"
    )


def history_entries(
    conn: sa.Connection, model_id: int, versions: list[int] | None
) -> list[HistoryEntry]:
    """Alias moves and stage changes of the model (or of ``versions``), oldest first."""
    h, s, v = t.alias_history, t.stage_history, t.versions
    aq = sa.select(h).where(h.c.model_id == model_id)
    sq = sa.select(s, v.c.version).join(v, v.c.id == s.c.version_id)
    sq = sq.where(v.c.model_id == model_id)
    if versions is not None:
        aq = aq.where(h.c.version.in_(versions))
        sq = sq.where(v.c.version.in_(versions))
    out = [
        HistoryEntry("alias", r.alias, int(r.version), r.valid_from, r.valid_to, r.actor, r.reason)
        for r in conn.execute(aq)
    ]
    out += [
        HistoryEntry("stage", r.stage, int(r.version), r.valid_from, r.valid_to, r.actor, r.reason)
        for r in conn.execute(sq)
    ]
    return sorted(out, key=lambda e: (e.valid_from, e.kind == "alias"))


class Stages(RegistryCore):
    """Promotion, rollback and the stage and alias history."""

    def promote(
        self,
        model: str,
        version: int,
        stage: Stage | str,
        actor: str,
        reason: str = "",
        expected_stage: Stage | str | None = None,
        request_id: str | None = None,
    ) -> VersionInfo:
        """Move a version to ``stage`` if the transition is legal and its gate is satisfied.

        Entering production archives the previous production version and moves ``champion``;
        entering canary moves ``canary``. ``expected_stage`` guards against a stale view: the
        request fails with Conflict when the version has moved since the caller looked.
        """
        target = parse_stage(stage) if isinstance(stage, str) else stage
        expected = (
            parse_stage(expected_stage) if isinstance(expected_stage, str) else expected_stage
        )
        payload = {
            "model": model,
            "version": version,
            "stage": target.value,
            "expected_stage": expected.value if expected else None,
            "reason": reason,
        }

        def change(w: Writer) -> dict[str, Any]:
            model_id = find_model(w.conn, model, lock=True)
            row = find_version(w.conn, model_id, model, version)
            if expected is not None and row.stage != expected.value:
                raise Conflict(
                    f"{model}/{version} is in stage {row.stage}, not {expected.value} as expected; "
                    "reload and retry"
                )
            transition(w, model_id, model, version, target, reason)
            return {"model": model, "version": version}

        self.write(actor, "version.promote", payload, request_id, change)
        return self.get_version(model, version)

    def rollback(
        self,
        model: str,
        actor: str,
        reason: str,
        version: int | None = None,
        evidence: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> VersionInfo:
        """Take a canary or champion out of service; returns the version now serving.

        Without ``version``: the canary when there is one, else the champion. A champion goes
        back to the previous champion (which returns to production). No gate applies: a
        rollback must never wait for approvals.
        """
        if not reason:
            raise InvalidRequest("a rollback needs a reason")
        payload = {"model": model, "version": version, "reason": reason}

        def change(w: Writer) -> dict[str, Any]:
            model_id = find_model(w.conn, model, lock=True)
            current = alias_map(w.conn, model_id)
            target = _rollback_target(model, version, current)
            serving = _take_out_of_service(w, model_id, model, target, current, reason)
            split = current_split(w.conn, model_id)
            if split and str(target) in split:
                # The rolled-back version takes no more traffic: all of it goes to the champion.
                decision = f"rollback-{w.request_id}"
                replace_split(w, model_id, model, {str(serving): 1.0}, reason, decision)
            body = {
                "version": target,
                "serving": serving,
                "reason": reason,
                "evidence": dict(evidence or {}),
            }
            w.event("rollback", model, body)
            return {"model": model, "version": serving}

        answer = self.write(actor, "version.rollback", payload, request_id, change)
        return self.get_version(model, int(answer["version"]))

    def history(self, model: str, version: int | None = None) -> list[HistoryEntry]:
        """Every alias move and stage change of ``model`` (or one version), oldest first."""
        with self.engine.connect() as conn:
            model_id = find_model(conn, model)
            return history_entries(conn, model_id, None if version is None else [version])
