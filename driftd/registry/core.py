"""The registry's base: its engine, secret and clock, and the one way to write (an audited,
idempotent transaction); shared by the write mixins."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.artifacts import ArtifactPolicy
from driftd.registry.lineage import LineageReads
from driftd.registry.writer import Writer, transaction


class RegistryCore(LineageReads):
    """Reads plus ``write``; the write mixins and ``Registry`` build on it."""

    def __init__(
        self,
        engine: sa.Engine,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        artifacts: ArtifactPolicy | None = None,
    ) -> None:
        super().__init__(engine)
        self.secret = secret
        self.clock = clock
        # Which artifact URIs versions may name; the default checks their form only.
        self.artifacts = artifacts or ArtifactPolicy()

    @classmethod
    def open(
        cls,
        url: str,
        secret: str | bytes | None = None,
        artifacts: ArtifactPolicy | None = None,
    ) -> Self:
        """Connect to ``url``; refuse a database whose schema is not up to date."""
        from driftd.db import make_engine, require_current

        engine = make_engine(url)
        require_current(engine)
        key = secret.encode() if isinstance(secret, str) else secret
        return cls(engine, key or None, artifacts=artifacts)

    def write(
        self,
        actor: str,
        action: str,
        payload: Mapping[str, Any],
        request_id: str | None,
        change: Callable[[Writer], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``change`` in one audited, idempotent write transaction (see ``writer``)."""
        answer, _ = transaction(
            self.engine, self.secret, self.clock, actor, action, payload, request_id, change
        )
        return answer

    @staticmethod
    def _exists(conn: sa.Connection, table: sa.Table, key: Any) -> bool:
        pk = next(iter(table.primary_key.columns))
        return conn.execute(sa.select(pk).where(pk == key)).first() is not None

    def _ensure_model(self, w: Writer, model: str, lock: bool = False) -> int:
        found = w.conn.execute(
            self._lock(sa.select(t.models.c.id).where(t.models.c.name == model), lock)
        ).scalar()
        if found is not None:
            return int(found)
        new_id = w.conn.execute(
            t.models.insert().values(
                name=model, description="", created_at=w.now, created_by=w.actor, next_version=1
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        w.audit("model.create", model, None, {"name": model})
        return int(new_id)
