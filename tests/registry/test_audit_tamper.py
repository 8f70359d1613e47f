"""Audit rows tampered with directly in the database: ``verify`` catches it, names the record."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.registry.audit import GENESIS, record_hash

SHA = "ab" * 32


@pytest.fixture
def filled(registry: Registry) -> Registry:
    for _ in range(4):
        registry.register_version("fraud", "file:///m", SHA, 1, "trainer", stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    registry.promote("fraud", 2, "canary", "ops")
    result = registry.verify_audit()
    assert result.ok and result.records >= 12
    return registry


def _exec(reg: Registry, stmt: sa.Executable) -> None:
    with reg.engine.begin() as conn:
        conn.execute(stmt)


def _row(reg: Registry, seq: int) -> sa.Row:
    with reg.engine.connect() as conn:
        return conn.execute(sa.select(t.audit).where(t.audit.c.seq == seq)).one()


def test_altered_record_is_named(filled: Registry) -> None:
    _exec(filled, t.audit.update().where(t.audit.c.seq == 5).values(actor="someone-else"))
    result = filled.verify_audit()
    assert not result.ok and result.seq == 5
    assert "record 5 altered" in result.problem


def test_altered_record_with_a_recomputed_unkeyed_hash_is_named(filled: Registry) -> None:
    """Without the server secret, a forger's recomputed hash does not match."""
    r = _row(filled, 6)
    forged = record_hash(
        None, r.seq, r.ts, r.actor, r.action, r.subject, r.old, '{"stage":"x"}', r.reason,
        r.request_id, r.prev_hash,
    )  # fmt: skip
    stmt = t.audit.update().where(t.audit.c.seq == 6).values(new='{"stage":"x"}', hash=forged)
    _exec(filled, stmt)
    result = filled.verify_audit()
    assert not result.ok and result.seq == 6


def test_rechained_record_breaks_the_link_to_the_next(registry: Registry) -> None:
    """An unkeyed chain: a forger recomputes record 3's hash, record 4 no longer chains."""
    reg = Registry(registry.engine, secret=None)
    for _ in range(3):
        reg.register_version("fraud", "file:///m", SHA, 1, "trainer", stage="staging")
    r = _row(reg, 3)
    forged = record_hash(
        None, r.seq, r.ts, "forger", r.action, r.subject, r.old, r.new, r.reason,
        r.request_id, r.prev_hash,
    )  # fmt: skip
    _exec(reg, t.audit.update().where(t.audit.c.seq == 3).values(actor="forger", hash=forged))
    result = reg.verify_audit()
    assert not result.ok and result.seq == 4
    assert "record 4 does not chain to record 3" in result.problem


@pytest.mark.parametrize("seq", [1, 7])
def test_deleted_record_is_named(filled: Registry, seq: int) -> None:
    _exec(filled, t.audit.delete().where(t.audit.c.seq == seq))
    result = filled.verify_audit()
    assert not result.ok and result.seq == seq
    assert f"record {seq} removed" in result.problem


def test_deleted_tail_is_caught_by_the_head(filled: Registry) -> None:
    last = filled.verify_audit().head_seq
    _exec(filled, t.audit.delete().where(t.audit.c.seq == last))
    result = filled.verify_audit()
    assert not result.ok and result.seq == last and "removed" in result.problem


def test_inserted_record_in_the_middle_is_named(filled: Registry) -> None:
    """Shift records 8.. up by one and insert a forged record 8 that chains to record 7."""
    last = filled.verify_audit().head_seq
    with filled.engine.begin() as conn:
        for seq in range(last, 7, -1):
            conn.execute(t.audit.update().where(t.audit.c.seq == seq).values(seq=seq + 1))
        prev = conn.execute(sa.select(t.audit.c.hash).where(t.audit.c.seq == 7)).scalar_one()
        fields = dict(ts=1.0, actor="mallory", action="alias.move", subject="fraud@champion",
                      old="null", new='{"version":4}', reason="", request_id="x")  # fmt: skip
        h = record_hash(None, 8, prev_hash=prev, **fields)  # type: ignore[arg-type]
        conn.execute(t.audit.insert().values(seq=8, prev_hash=prev, hash=h, **fields))
    result = filled.verify_audit()
    assert not result.ok and result.seq == 8


def test_inserted_record_at_the_end_is_named(filled: Registry) -> None:
    head = filled.verify_audit().head_seq
    r = _row(filled, head)
    fields = dict(ts=r.ts + 1, actor="mallory", action="alias.move", subject="fraud@champion",
                  old="null", new='{"version":4}', reason="", request_id="y")  # fmt: skip
    h = record_hash(b"test-secret", head + 1, prev_hash=r.hash, **fields)  # type: ignore[arg-type]
    _exec(filled, t.audit.insert().values(seq=head + 1, prev_hash=r.hash, hash=h, **fields))
    result = filled.verify_audit()
    assert not result.ok and result.seq == head + 1 and "inserted" in result.problem


def test_empty_log_verifies(registry: Registry) -> None:
    result = registry.verify_audit()
    assert result.ok and result.records == 0 and result.head_seq == 0
    assert GENESIS == "0" * 64
