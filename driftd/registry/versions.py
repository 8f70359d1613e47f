"""Versions: registering them (the model is created with its first), recording evaluations,
and listing models and versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.aliases import check_free_alias, move_alias
from driftd.registry.core import RegistryCore
from driftd.registry.errors import InvalidRequest, NotFound
from driftd.registry.names import Stage, check_model_name, parse_stage
from driftd.registry.records import ModelInfo, VersionInfo
from driftd.registry.rows import (
    alias_map,
    ensure_model,
    find_model,
    find_version,
    row_exists,
    version_info,
)
from driftd.registry.stages import transition
from driftd.registry.writer import Writer

# Payload keys that are not columns of the version row.
_NOT_COLUMNS = ("model", "stage", "aliases")


def _check_artifact(sha256: str, size: int) -> None:
    """Refuse a digest that is not 64 characters or a negative size."""
    if len(sha256) != 64:
        raise InvalidRequest(f"artifact_sha256 must be 64 hex digits, got {len(sha256)} characters")
    if size < 0:
        raise InvalidRequest(f"artifact_size must be ≥ 0, got {size}")


def _check_references(
    conn: sa.Connection, model_id: int, model: str, run_id: str | None, parent: int | None
) -> None:
    """Refuse a run or a parent version that does not exist."""
    if run_id is not None and not row_exists(conn, t.runs, run_id):
        raise NotFound(f"run {run_id!r} does not exist")
    if parent is not None:
        find_version(conn, model_id, model, parent)


def _take_number(conn: sa.Connection, model_id: int) -> int:
    """The model's next version number, reserved (inside a write holding the model's lock)."""
    number = int(
        conn.execute(
            sa.select(t.models.c.next_version).where(t.models.c.id == model_id)
        ).scalar_one()
    )
    conn.execute(t.models.update().where(t.models.c.id == model_id).values(next_version=number + 1))
    return number


def _insert_version(
    w: Writer, model_id: int, number: int, fields: Mapping[str, Any], reason: str
) -> None:
    """Write the version row in development and open its stage history."""
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


def _model_info(conn: sa.Connection, r: sa.Row[Any]) -> ModelInfo:
    latest = r.next_version - 1
    return ModelInfo(
        name=r.name,
        description=r.description,
        created_at=float(r.created_at),
        created_by=r.created_by,
        latest_version=latest if latest >= 1 else None,
        aliases=alias_map(conn, int(r.id)),
    )


class Versions(RegistryCore):
    """Register versions and their evaluations; list models and versions."""

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
            check_free_alias(a)
        _check_artifact(artifact_sha256, artifact_size)
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
            model_id = ensure_model(w, model, lock=True)
            _check_references(w.conn, model_id, model, run_id, parent_version)
            number = _take_number(w.conn, model_id)
            fields = {k: v for k, v in payload.items() if k not in _NOT_COLUMNS}
            _insert_version(w, model_id, number, fields, reason)
            w.audit("version.register", f"{model}/{number}", None, payload, reason)
            w.event("version_created", model, {"version": number, "artifact_uri": artifact_uri})
            if target is not Stage.DEVELOPMENT:
                transition(w, model_id, model, number, target, reason)
            for a in aliases:
                move_alias(w, model_id, model, a, number, reason)
            return {"model": model, "version": number}

        answer = self.write(actor, "version.register", payload, request_id, change)
        return self.get_version(answer["model"], int(answer["version"]))

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
            model_id = find_model(w.conn, model, lock=True)
            row = find_version(w.conn, model_id, model, version)
            w.conn.execute(
                t.versions.update()
                .where(t.versions.c.id == row.id)
                .values(evaluation=dict(evaluation), row_version=row.row_version + 1)
            )
            w.audit("version.evaluate", f"{model}/{version}", row.evaluation, dict(evaluation))
            return {}

        self.write(actor, "version.evaluate", payload, request_id, change)

    def list_models(self, limit: int = 1000, after: str = "") -> list[ModelInfo]:
        """Models ordered by name, ``limit`` at a time after the name ``after``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.models)
                .where(t.models.c.name > after)
                .order_by(t.models.c.name)
                .limit(limit)
            ).all()
            return [_model_info(conn, r) for r in rows]

    def get_model(self, model: str) -> ModelInfo:
        """One model with its aliases."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(t.models).where(t.models.c.name == model)).first()
            if r is None:
                raise NotFound(f"model {model!r} does not exist")
            return _model_info(conn, r)

    def list_versions(
        self, model: str, stage: Stage | None = None, limit: int = 1000, before: int | None = None
    ) -> list[VersionInfo]:
        """Versions of ``model``, newest first, optionally in one stage."""
        with self.engine.connect() as conn:
            model_id = find_model(conn, model)
            q = sa.select(t.versions).where(t.versions.c.model_id == model_id)
            if stage is not None:
                q = q.where(t.versions.c.stage == stage.value)
            if before is not None:
                q = q.where(t.versions.c.version < before)
            rows = conn.execute(q.order_by(t.versions.c.version.desc()).limit(limit)).all()
            amap = alias_map(conn, model_id)
            return [version_info(conn, model, r, amap) for r in rows]
