"""The audit chain as the registry reads it: records by sequence, and the walk that verifies
them against the head row (records are appended by ``writer.Writer.audit``; the hashing and the
checks are in ``audit``, the head row in ``head``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.audit import AuditRecord, Head, VerifyResult, Witness, verify
from driftd.registry.core import RegistryCore


def _record_fields(conn: sa.Connection, batch: int) -> Iterator[tuple[Any, ...]]:
    """Every record's fields in ``AuditRecord`` order, by ascending ``seq``, ``batch`` a query."""
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


class AuditLog(RegistryCore):
    """Read and verify the audit chain."""

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

    def verify_audit(self, batch: int = 20_000, expect_head: Witness | None = None) -> VerifyResult:
        """Walk the whole audit chain and name the first altered, removed or inserted record, a
        head row that was moved, or (given ``expect_head``) a record a witness saw that is gone."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.audit_head).where(t.audit_head.c.id == 1)).one()
            head = Head(int(row.seq), str(row.hash), row.key_check)
            return verify(_record_fields(conn, batch), head, self.secret, expect_head)
