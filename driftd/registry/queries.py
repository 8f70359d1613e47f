"""The registry's reads: models, versions, aliases, history, traffic, the audit log and its check.

"Which version held alias A at time T" is one indexed query on ``alias_history``, fast with
millions of audit records. Lineage is in ``lineage.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.audit import AuditRecord, Head, VerifyResult, Witness, verify
from driftd.registry.errors import NotFound
from driftd.registry.names import ModelRef, Stage, parse_ref
from driftd.registry.records import (
    ApprovalInfo,
    HistoryEntry,
    ModelInfo,
    VersionInfo,
)


class Reads:
    """Read queries over the registry tables; ``Registry`` adds the writes."""

    secret: bytes | None

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- building blocks (also used inside write transactions) ----------------------------

    @staticmethod
    def _lock(stmt: sa.Select[Any], lock: bool) -> sa.Select[Any]:
        return stmt.with_for_update() if lock else stmt

    def _model_id(self, conn: sa.Connection, model: str, lock: bool = False) -> int:
        found = conn.execute(
            self._lock(sa.select(t.models.c.id).where(t.models.c.name == model), lock)
        ).scalar()
        if found is None:
            raise NotFound(f"model {model!r} does not exist")
        return int(found)

    @staticmethod
    def _version_row(conn: sa.Connection, model_id: int, model: str, version: int) -> sa.Row[Any]:
        row = conn.execute(
            sa.select(t.versions).where(
                (t.versions.c.model_id == model_id) & (t.versions.c.version == version)
            )
        ).first()
        if row is None:
            raise NotFound(f"model {model!r} has no version {version}")
        return row

    @staticmethod
    def _alias_map(conn: sa.Connection, model_id: int) -> dict[str, int]:
        rows = conn.execute(
            sa.select(t.aliases.c.alias, t.aliases.c.version).where(
                t.aliases.c.model_id == model_id
            )
        )
        return {r.alias: int(r.version) for r in rows}

    @staticmethod
    def _versions_in(conn: sa.Connection, model_id: int, stage: Stage) -> list[int]:
        rows = conn.execute(
            sa.select(t.versions.c.version).where(
                (t.versions.c.model_id == model_id) & (t.versions.c.stage == stage.value)
            )
        )
        return [int(v) for v in rows.scalars()]

    @staticmethod
    def _previous_holder(
        conn: sa.Connection, model_id: int, alias: str, current: int
    ) -> int | None:
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

    def _version_info(
        self,
        conn: sa.Connection,
        model: str,
        row: sa.Row[Any],
        alias_map: dict[str, int] | None = None,
    ) -> VersionInfo:
        amap = self._alias_map(conn, int(row.model_id)) if alias_map is None else alias_map
        aliases = sorted(a for a, v in amap.items() if v == row.version)
        return VersionInfo(
            model=model,
            version=int(row.version),
            stage=row.stage,
            artifact_uri=row.artifact_uri,
            artifact_sha256=row.artifact_sha256,
            artifact_size=int(row.artifact_size),
            framework=row.framework,
            signature=dict(row.signature),
            run_id=row.run_id,
            parent_version=row.parent_version,
            evaluation=None if row.evaluation is None else dict(row.evaluation),
            description=row.description,
            created_at=float(row.created_at),
            created_by=row.created_by,
            row_version=int(row.row_version),
            aliases=aliases,
        )

    def _resolve_number(self, conn: sa.Connection, ref: ModelRef) -> tuple[int, int]:
        model_id = self._model_id(conn, ref.model)
        if ref.version is not None:
            return model_id, ref.version
        if ref.alias == "latest":
            found = conn.execute(
                sa.select(sa.func.max(t.versions.c.version)).where(
                    t.versions.c.model_id == model_id
                )
            ).scalar()
            if found is None:
                raise NotFound(f"model {ref.model!r} has no versions")
            return model_id, int(found)
        number = self._alias_map(conn, model_id).get(str(ref.alias))
        if number is None:
            raise NotFound(f"model {ref.model!r} has no alias {ref.alias!r}")
        return model_id, number

    # -- public reads -----------------------------------------------------------------------

    def get_version(self, model: str, version: int) -> VersionInfo:
        """One version by number."""
        return self.resolve(ModelRef(model, version=version))

    def resolve(self, ref: str | ModelRef) -> VersionInfo:
        """The version a reference names: ``models:/m/3``, ``m@champion``, ``m`` (latest)."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        with self.engine.connect() as conn:
            model_id, number = self._resolve_number(conn, r)
            return self._version_info(
                conn, r.model, self._version_row(conn, model_id, r.model, number)
            )

    def list_models(self, limit: int = 1000, after: str = "") -> list[ModelInfo]:
        """Models ordered by name, ``limit`` at a time after the name ``after``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.models)
                .where(t.models.c.name > after)
                .order_by(t.models.c.name)
                .limit(limit)
            ).all()
            return [self._model_info(conn, r) for r in rows]

    def get_model(self, model: str) -> ModelInfo:
        """One model with its aliases."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(t.models).where(t.models.c.name == model)).first()
            if r is None:
                raise NotFound(f"model {model!r} does not exist")
            return self._model_info(conn, r)

    def _model_info(self, conn: sa.Connection, r: sa.Row[Any]) -> ModelInfo:
        latest = r.next_version - 1
        return ModelInfo(
            name=r.name,
            description=r.description,
            created_at=float(r.created_at),
            created_by=r.created_by,
            latest_version=latest if latest >= 1 else None,
            aliases=self._alias_map(conn, int(r.id)),
        )

    def list_versions(
        self, model: str, stage: Stage | None = None, limit: int = 1000, before: int | None = None
    ) -> list[VersionInfo]:
        """Versions of ``model``, newest first, optionally in one stage."""
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, model)
            q = sa.select(t.versions).where(t.versions.c.model_id == model_id)
            if stage is not None:
                q = q.where(t.versions.c.stage == stage.value)
            if before is not None:
                q = q.where(t.versions.c.version < before)
            rows = conn.execute(q.order_by(t.versions.c.version.desc()).limit(limit)).all()
            amap = self._alias_map(conn, model_id)
            return [self._version_info(conn, model, r, amap) for r in rows]

    def alias_at(self, model: str, alias: str, at: float) -> int | None:
        """The version ``alias`` pointed at, at time ``at`` (None when it pointed nowhere)."""
        h = t.alias_history
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(h.c.version)
                .join(t.models, t.models.c.id == h.c.model_id)
                .where(
                    (t.models.c.name == model)
                    & (h.c.alias == alias)
                    & (h.c.valid_from <= at)
                    & (h.c.valid_to.is_(None) | (h.c.valid_to > at))
                )
                .order_by(h.c.valid_from.desc())
                .limit(1)
            ).scalar()
        return None if found is None else int(found)

    @staticmethod
    def _history_entries(
        conn: sa.Connection, model_id: int, versions: list[int] | None
    ) -> list[HistoryEntry]:
        h, s, v = t.alias_history, t.stage_history, t.versions
        aq = sa.select(h).where(h.c.model_id == model_id)
        sq = sa.select(s, v.c.version).join(v, v.c.id == s.c.version_id)
        sq = sq.where(v.c.model_id == model_id)
        if versions is not None:
            aq = aq.where(h.c.version.in_(versions))
            sq = sq.where(v.c.version.in_(versions))
        out = [
            HistoryEntry(
                "alias", r.alias, int(r.version), r.valid_from, r.valid_to, r.actor, r.reason
            )
            for r in conn.execute(aq)
        ]
        out += [
            HistoryEntry(
                "stage", r.stage, int(r.version), r.valid_from, r.valid_to, r.actor, r.reason
            )
            for r in conn.execute(sq)
        ]
        return sorted(out, key=lambda e: (e.valid_from, e.kind == "alias"))

    def history(self, model: str, version: int | None = None) -> list[HistoryEntry]:
        """Every alias move and stage change of ``model`` (or one version), oldest first."""
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, model)
            return self._history_entries(conn, model_id, None if version is None else [version])

    def approvals(self, model: str, version: int) -> list[ApprovalInfo]:
        """The approvals recorded for one version."""
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, model)
            row = self._version_row(conn, model_id, model, version)
            rows = conn.execute(
                sa.select(t.approvals)
                .where(t.approvals.c.version_id == row.id)
                .order_by(t.approvals.c.created_at, t.approvals.c.id)
            )
            return [
                ApprovalInfo(version, a.stage, a.approver, a.role, a.comment, a.created_at)
                for a in rows
            ]

    def traffic(self, model: str, at: float | None = None) -> dict[int, float]:
        """The traffic split of ``model`` now (or at time ``at``); empty when never set."""
        d = t.deployments
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, model)
            q = sa.select(d.c.weights).where(d.c.model_id == model_id)
            if at is None:
                q = q.where(d.c.valid_to.is_(None))
            else:
                q = q.where((d.c.valid_from <= at) & (d.c.valid_to.is_(None) | (d.c.valid_to > at)))
            found = conn.execute(q.order_by(d.c.valid_from.desc()).limit(1)).scalar()
        return {} if found is None else {int(v): float(w) for v, w in found.items()}

    def audit_log(
        self, after: int = 0, limit: int = 100, subject: str | None = None
    ) -> list[AuditRecord]:
        """Audit records with ``seq > after``, oldest first."""
        q = sa.select(t.audit).where(t.audit.c.seq > after)
        if subject is not None:
            q = q.where(t.audit.c.subject == subject)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.audit.c.seq).limit(limit)).all()
        return [AuditRecord(*r) for r in rows]

    def _audit_rows(self, conn: sa.Connection, batch: int) -> Iterator[tuple[Any, ...]]:
        cols = [c for c in t.audit.c]
        last = 0
        while True:
            rows = conn.execute(
                sa.select(*cols).where(t.audit.c.seq > last).order_by(t.audit.c.seq).limit(batch)
            ).all()
            if not rows:
                return
            yield from (tuple(r) for r in rows)
            last = int(rows[-1][0])

    def verify_audit(self, batch: int = 20_000, expect_head: Witness | None = None) -> VerifyResult:
        """Walk the whole audit chain and name the first altered, removed or inserted record, a
        head row that was moved, or (given ``expect_head``) a record a witness saw that is gone."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.audit_head).where(t.audit_head.c.id == 1)).one()
            head = Head(int(row.seq), str(row.hash), row.key_check)
            return verify(self._audit_rows(conn, batch), head, self.secret, expect_head)
