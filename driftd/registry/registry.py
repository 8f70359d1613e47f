"""``Registry``: the Python API of driftd's model registry, used by the daemon, retraining,
rollout, the CLI and the HTTP API.

Every write is one transaction (see ``writer.transaction``) that changes the tables, appends
the audit records that describe the change, and writes the outbox events that announce it.
Stage-bound aliases (``champion`` follows production, ``canary`` follows canary) move only
with their stage, so approval gates cannot be bypassed by setting an alias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.errors import Conflict, GateNotSatisfied, InvalidRequest, NotFound
from driftd.registry.governance import GateWrites
from driftd.registry.names import (
    STAGE_ALIAS,
    Stage,
    allowed_from,
    check_alias,
    check_model_name,
    is_allowed,
    parse_stage,
)
from driftd.registry.records import VersionInfo
from driftd.registry.runs import RUN_STATUSES, RunWrites
from driftd.registry.writer import Writer

_STAGE_ALIASES = frozenset(STAGE_ALIAS.values())
__all__ = ["RUN_STATUSES", "Registry"]


class Registry(RunWrites, GateWrites):
    """Models, versions, runs, datasets, stages, aliases, approvals, traffic and the audit chain."""

    def register_version(
        self,
        model: str,
        artifact_uri: str,
        artifact_sha256: str,
        artifact_size: int,
        actor: str,
        framework: str = "torch",
        signature: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        parent_version: int | None = None,
        evaluation: Mapping[str, Any] | None = None,
        description: str = "",
        stage: Stage | str = Stage.DEVELOPMENT,
        aliases: Sequence[str] = (),
        reason: str = "",
        request_id: str | None = None,
    ) -> VersionInfo:
        """Register a new version (the model is created when new); optionally move it to
        ``stage`` (gates apply) and point ``aliases`` at it, all in one transaction."""
        check_model_name(model)
        self.artifacts.check(artifact_uri)  # scheme, roots, traversal, metadata hosts
        target = parse_stage(stage) if isinstance(stage, str) else stage
        for a in aliases:
            self._check_free_alias(a)
        if len(artifact_sha256) != 64:
            raise InvalidRequest(
                f"artifact_sha256 must be 64 hex digits, got {len(artifact_sha256)} characters"
            )
        if artifact_size < 0:
            raise InvalidRequest(f"artifact_size must be ≥ 0, got {artifact_size}")
        payload = {
            "model": model,
            "artifact_uri": artifact_uri,
            "artifact_sha256": artifact_sha256,
            "artifact_size": artifact_size,
            "framework": framework,
            "signature": dict(signature or {}),
            "run_id": run_id,
            "parent_version": parent_version,
            "evaluation": dict(evaluation) if evaluation is not None else None,
            "description": description,
            "stage": target.value,
            "aliases": list(aliases),
        }

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._ensure_model(w, model, lock=True)
            if run_id is not None and not self._exists(w.conn, t.runs, run_id):
                raise NotFound(f"run {run_id!r} does not exist")
            if parent_version is not None:
                self._version_row(w.conn, model_id, model, parent_version)
            number = int(
                w.conn.execute(
                    sa.select(t.models.c.next_version).where(t.models.c.id == model_id)
                ).scalar_one()
            )
            w.conn.execute(
                t.models.update().where(t.models.c.id == model_id).values(next_version=number + 1)
            )
            fields = {k: v for k, v in payload.items() if k not in ("model", "stage", "aliases")}
            vid = w.conn.execute(
                t.versions.insert().values(
                    model_id=model_id,
                    version=number,
                    stage=Stage.DEVELOPMENT.value,
                    created_at=w.now,
                    created_by=w.actor,
                    row_version=1,
                    **fields,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            w.conn.execute(
                t.stage_history.insert().values(
                    version_id=vid,
                    stage=Stage.DEVELOPMENT.value,
                    valid_from=w.now,
                    actor=w.actor,
                    reason=reason,
                )
            )
            subject = f"{model}/{number}"
            w.audit("version.register", subject, None, payload, reason)
            w.event("version_created", model, {"version": number, "artifact_uri": artifact_uri})
            if target is not Stage.DEVELOPMENT:
                self._transition(w, model_id, model, number, target, reason)
            for a in aliases:
                self._move_alias(w, model_id, model, a, number, reason)
            return {"model": model, "version": number}

        answer = self.write(actor, "version.register", payload, request_id, change)
        return self.get_version(answer["model"], int(answer["version"]))

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
            model_id = self._model_id(w.conn, model, lock=True)
            row = self._version_row(w.conn, model_id, model, version)
            if expected is not None and row.stage != expected.value:
                raise Conflict(
                    f"{model}/{version} is in stage {row.stage}, not {expected.value} as expected; "
                    "reload and retry"
                )
            self._transition(w, model_id, model, version, target, reason)
            return {"model": model, "version": version}

        self.write(actor, "version.promote", payload, request_id, change)
        return self.get_version(model, version)

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        actor: str,
        reason: str = "",
        request_id: str | None = None,
    ) -> None:
        """Point a free alias (e.g. ``challenger``) at ``version``."""
        self._check_free_alias(alias)
        payload = {"model": model, "alias": alias, "version": version}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            self._version_row(w.conn, model_id, model, version)
            self._move_alias(w, model_id, model, alias, version, reason)
            return {}

        self.write(actor, "alias.set", payload, request_id, change)

    def delete_alias(
        self, model: str, alias: str, actor: str, reason: str = "", request_id: str | None = None
    ) -> None:
        """Remove a free alias."""
        self._check_free_alias(alias)
        payload = {"model": model, "alias": alias}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            if not self._drop_alias(w, model_id, model, alias, reason):
                raise NotFound(f"{model} has no alias {alias!r}")
            return {}

        self.write(actor, "alias.delete", payload, request_id, change)

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
            model_id = self._model_id(w.conn, model, lock=True)
            current = self._alias_map(w.conn, model_id)
            target = version
            if target is None:
                target = current.get("canary", current.get("champion"))
                if target is None:
                    raise Conflict(f"{model} has neither a canary nor a champion to roll back")
            row = self._version_row(w.conn, model_id, model, target)
            serving: int
            if row.stage == Stage.CANARY.value:
                self._set_stage(w, model_id, model, target, Stage.ROLLED_BACK, reason)
                serving = current.get("champion", target)
            elif row.stage == Stage.PRODUCTION.value:
                previous = self._previous_holder(w.conn, model_id, "champion", target)
                if previous is None:
                    raise Conflict(
                        f"{model}/{target} has no earlier champion that was not rolled back; "
                        "there is nothing to roll back to"
                    )
                self._set_stage(w, model_id, model, previous, Stage.PRODUCTION, reason)
                self._set_stage(w, model_id, model, target, Stage.ROLLED_BACK, reason)
                serving = previous
            else:
                raise Conflict(
                    f"{model}/{target} is in stage {row.stage}; only a canary or production "
                    "version can be rolled back"
                )
            d = t.deployments
            split = w.conn.execute(
                sa.select(d.c.weights).where((d.c.model_id == model_id) & d.c.valid_to.is_(None))
            ).scalar()
            if split and str(target) in split:
                # The rolled-back version takes no more traffic: all of it goes to the champion.
                self._set_traffic(
                    w, model_id, model, {str(serving): 1.0}, reason, f"rollback-{w.request_id}"
                )
            w.event(
                "rollback",
                model,
                {
                    "version": target,
                    "serving": serving,
                    "reason": reason,
                    "evidence": dict(evidence or {}),
                },
            )
            return {"model": model, "version": serving}

        answer = self.write(actor, "version.rollback", payload, request_id, change)
        return self.get_version(model, int(answer["version"]))

    def record_evaluation(
        self,
        model: str,
        version: int,
        evaluation: Mapping[str, Any],
        actor: str,
        request_id: str | None = None,
    ) -> None:
        """Store a champion/challenger evaluation with the version (``promote`` key: bool)."""
        if not isinstance(evaluation.get("promote"), bool):
            raise InvalidRequest("an evaluation needs a boolean 'promote' decision")
        payload = {"model": model, "version": version, "evaluation": dict(evaluation)}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            row = self._version_row(w.conn, model_id, model, version)
            w.conn.execute(
                t.versions.update()
                .where(t.versions.c.id == row.id)
                .values(evaluation=dict(evaluation), row_version=row.row_version + 1)
            )
            w.audit("version.evaluate", f"{model}/{version}", row.evaluation, dict(evaluation))
            return {}

        self.write(actor, "version.evaluate", payload, request_id, change)

    @staticmethod
    def _check_free_alias(alias: str) -> None:
        check_alias(alias)
        if alias in _STAGE_ALIASES:
            stage = next(s for s, a in STAGE_ALIAS.items() if a == alias)
            raise InvalidRequest(
                f"alias {alias!r} follows the {stage.value} stage; promote the version to "
                f"{stage.value} instead (its approval gate applies)"
            )

    def _transition(
        self,
        w: Writer,
        model_id: int,
        model: str,
        version: int,
        target: Stage,
        reason: str,
    ) -> None:
        row = self._version_row(w.conn, model_id, model, version)
        src = Stage(row.stage)
        if not is_allowed(src, target):
            raise Conflict(
                f"{model}/{version} cannot move from {src.value} to {target.value}; from "
                f"{src.value} it may move to {', '.join(allowed_from(src))}"
            )
        missing = self._unmet(w.conn, model, version, target)
        if missing:
            raise GateNotSatisfied(
                f"moving {model}/{version} to {target.value} needs " + "; ".join(missing)
            )
        if target is Stage.CANARY:
            holder = self._alias_map(w.conn, model_id).get("canary")
            if holder is not None and holder != version:
                raise Conflict(
                    f"{model}/{holder} is already in canary; promote or roll it back first"
                )
        replaced = self._versions_in(w.conn, model_id, Stage.PRODUCTION)
        # The new stage first: champion then moves straight from the old version to this one.
        self._set_stage(w, model_id, model, version, target, reason)
        if target is Stage.PRODUCTION:
            for other in replaced:
                if other != version:
                    self._set_stage(w, model_id, model, other, Stage.ARCHIVED, "replaced")
            aliases = self._alias_map(w.conn, model_id)
            if aliases.get("challenger") == version:
                self._drop_alias(w, model_id, model, "challenger", "promoted to production")

    def _set_stage(
        self, w: Writer, model_id: int, model: str, version: int, stage: Stage, reason: str
    ) -> None:
        """Change the stage, close and open its history interval, move stage-bound aliases."""
        row = self._version_row(w.conn, model_id, model, version)
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
        if old_alias is not None and self._alias_map(w.conn, model_id).get(old_alias) == version:
            self._drop_alias(w, model_id, model, old_alias, reason)
        new_alias = STAGE_ALIAS.get(stage)
        if new_alias is not None:
            self._move_alias(w, model_id, model, new_alias, version, reason)

    def _move_alias(
        self, w: Writer, model_id: int, model: str, alias: str, version: int, reason: str
    ) -> None:
        old = self._alias_map(w.conn, model_id).get(alias)
        if old == version:
            return
        self._close_alias(w, model_id, alias)
        if old is None:
            w.conn.execute(
                t.aliases.insert().values(
                    model_id=model_id, alias=alias, version=version, updated_at=w.now
                )
            )
        else:
            w.conn.execute(
                t.aliases.update()
                .where((t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias))
                .values(version=version, updated_at=w.now)
            )
        w.conn.execute(
            t.alias_history.insert().values(
                model_id=model_id,
                alias=alias,
                version=version,
                valid_from=w.now,
                actor=w.actor,
                reason=reason,
            )
        )
        w.audit("alias.move", f"{model}@{alias}", {"version": old}, {"version": version}, reason)
        w.event("alias_moved", model, {"alias": alias, "from": old, "to": version})

    def _drop_alias(self, w: Writer, model_id: int, model: str, alias: str, reason: str) -> bool:
        old = self._alias_map(w.conn, model_id).get(alias)
        if old is None:
            return False
        self._close_alias(w, model_id, alias)
        w.conn.execute(
            t.aliases.delete().where(
                (t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias)
            )
        )
        w.audit("alias.delete", f"{model}@{alias}", {"version": old}, {"version": None}, reason)
        w.event("alias_moved", model, {"alias": alias, "from": old, "to": None})
        return True

    @staticmethod
    def _close_alias(w: Writer, model_id: int, alias: str) -> None:
        w.conn.execute(
            t.alias_history.update()
            .where(
                (t.alias_history.c.model_id == model_id)
                & (t.alias_history.c.alias == alias)
                & t.alias_history.c.valid_to.is_(None)
            )
            .values(valid_to=w.now)
        )
