"""Audit rows tampered with directly in the database: ``verify`` catches it, names the record."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from driftd.config import RegistrySettings
from driftd.registry import Conflict, Registry
from driftd.registry import schema as t
from driftd.registry.audit import GENESIS, Witness, key_fingerprint, record_hash

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
    """An empty log verifies with and without a key; its first record chains to GENESIS."""
    for reg in (registry, Registry(registry.engine, secret=None)):
        result = reg.verify_audit()
        assert result.ok and result.records == 0 and result.head_seq == 0
        assert result.problem == "" and result.seq is None
    registry.register_version("fraud", "file:///m", SHA, 1, "trainer")
    assert _row(registry, 1).prev_hash == GENESIS
    assert registry.verify_audit().ok


def test_empty_log_whose_head_claims_a_record_fails(registry: Registry) -> None:
    _exec(registry, t.audit_head.update().values(seq=1, hash="ab" * 32))
    result = Registry(registry.engine, secret=None).verify_audit()
    assert not result.ok and result.seq == 1 and "record 1 removed" in result.problem


# -- the last record and the head row ---------------------------------------------------------


def _rehash(reg: Registry, seq: int, secret: bytes | None, prev: str, **changes: str) -> str:
    """Rewrite record ``seq`` with ``changes``, chained to ``prev``, hashed under ``secret``."""
    r = _row(reg, seq)._asdict()
    r.update(changes, prev_hash=prev)
    fields = {k: r[k] for k in ("ts", "actor", "action", "subject", "old", "new", "reason")}
    h = record_hash(secret, seq, request_id=r["request_id"], prev_hash=prev, **fields)
    stmt = t.audit.update().where(t.audit.c.seq == seq)
    _exec(reg, stmt.values(prev_hash=prev, hash=h, **changes))
    return h


def _rechain(reg: Registry, secret: bytes | None, forged: int, **changes: str) -> str:
    """Recompute every record's hash under ``secret``, record ``forged`` rewritten; the last
    hash. The head row is left alone."""
    last = reg.verify_audit().head_seq
    prev = GENESIS
    for seq in range(1, last + 1):
        prev = _rehash(reg, seq, secret, prev, **(changes if seq == forged else {}))
    return prev


def _head(reg: Registry) -> sa.Row:
    with reg.engine.connect() as conn:
        return conn.execute(sa.select(t.audit_head)).one()


@pytest.mark.parametrize("keyed", [True, False])
def test_rewritten_and_rehashed_last_record_is_named(registry: Registry, keyed: bool) -> None:
    """Its own hash is right (a forger with the key, or an unkeyed chain): only the head's hash
    shows it was changed."""
    secret = b"test-secret" if keyed else None
    reg = Registry(registry.engine, secret=secret)
    for _ in range(3):
        reg.register_version("fraud", "file:///m", SHA, 1, "trainer", stage="staging")
    last = reg.verify_audit().head_seq
    _rehash(reg, last, secret, _row(reg, last).prev_hash, actor="forger")
    result = reg.verify_audit()
    assert not result.ok and result.seq == last
    assert f"record {last} altered: it does not match the head's hash" in result.problem


def test_whole_chain_recomputed_is_caught_by_the_head(registry: Registry) -> None:
    """An unkeyed chain recomputed from record 2 to the end chains perfectly; the head row
    still holds the genuine last hash."""
    reg = Registry(registry.engine, secret=None)
    for _ in range(4):
        reg.register_version("fraud", "file:///m", SHA, 1, "trainer", stage="staging")
    last = reg.verify_audit().head_seq
    _rechain(reg, None, 2, actor="forger")
    result = reg.verify_audit()
    assert not result.ok and result.seq == last
    assert "does not match the head's hash" in result.problem


def test_deleted_tail_with_a_rewritten_head_is_caught(filled: Registry) -> None:
    """Remove the last records and point the head row at the new last one: the head's seal
    (an HMAC over its sequence and hash) no longer matches, and writers refuse to extend it."""
    last = filled.verify_audit().head_seq
    keep = _row(filled, last - 3)
    _exec(filled, t.audit.delete().where(t.audit.c.seq > keep.seq))
    _exec(filled, t.audit_head.update().values(seq=keep.seq, hash=keep.hash))
    result = filled.verify_audit()
    assert not result.ok and result.seq == keep.seq + 1
    assert "head row was altered" in result.problem
    with pytest.raises(Conflict, match="head row was altered"):
        filled.register_version("fraud", "file:///m", SHA, 1, "trainer")


def test_a_rolled_back_head_passes_alone_and_fails_against_a_witness(filled: Registry) -> None:
    """A copy of an older head row (its seal included) hides a removed tail from ``verify``;
    a witness of a later head (an ``audit.head`` event) does not."""
    old = _head(filled)
    filled.promote("fraud", 3, "production", "ops")
    now = _head(filled)
    _exec(filled, t.audit.delete().where(t.audit.c.seq > old.seq))
    _exec(filled, t.audit_head.update().values(seq=old.seq, hash=old.hash, key_check=old.key_check))
    assert filled.verify_audit().ok
    result = filled.verify_audit(expect_head=Witness(now.seq, now.hash))
    assert not result.ok and result.seq == now.seq
    assert f"record {now.seq} is missing: the log ends at {old.seq}" in result.problem


def test_a_head_from_before_seals_fails_verify_until_a_write_seals_it(filled: Registry) -> None:
    """A head row whose key check is the old key fingerprint (driftd before head seals) is not
    bound to its sequence: verify says so; the next write by a holder of the key seals it."""
    _exec(filled, t.audit_head.update().values(key_check=key_fingerprint(b"test-secret")))
    result = filled.verify_audit()
    assert not result.ok and "head row is not sealed" in result.problem
    filled.register_version("fraud", "file:///m", SHA, 1, "trainer")
    assert filled.verify_audit().ok


# -- keyed and unkeyed logs ----------------------------------------------------------------------


def test_keyed_log_without_the_key_says_the_key_is_missing(filled: Registry) -> None:
    result = Registry(filled.engine, secret=None).verify_audit()
    assert not result.ok and result.records == 0 and result.seq is None
    assert "keyed" in result.problem and "no key is configured" in result.problem
    assert "DRIFTD_REGISTRY__SECRET" in result.problem and "altered" not in result.problem


@pytest.mark.parametrize("clear_key_check", [False, True])
def test_keyed_log_rechained_with_plain_sha256_fails(
    filled: Registry, clear_key_check: bool
) -> None:
    """A forger without the key re-chains the whole log with plain SHA-256 and moves the head;
    verifiers with the key refuse it, and so do verifiers without it while the head row still
    says the log is keyed."""
    last_hash = _rechain(filled, None, 3, actor="forger")
    head = t.audit_head.update().values(hash=last_hash)
    _exec(filled, head.values(key_check="") if clear_key_check else head)
    keyed = filled.verify_audit()
    assert not keyed.ok
    unkeyed = Registry(filled.engine, secret=None).verify_audit()
    if clear_key_check:
        assert "written without a key" in keyed.problem and keyed.seq is None
        assert unkeyed.ok  # nothing tells them apart without the key: a witness would
    else:
        assert "secret differs" in keyed.problem and keyed.seq == 1
        assert not unkeyed.ok and "no key is configured" in unkeyed.problem


def test_unkeyed_log_read_with_a_key_says_it_is_not_keyed(registry: Registry) -> None:
    Registry(registry.engine, secret=None).register_version("fraud", "file:///m", SHA, 1, "t")
    result = registry.verify_audit()
    assert not result.ok and "written without a key" in result.problem


def test_a_verifier_with_another_key_says_the_secret_differs(filled: Registry) -> None:
    result = Registry(filled.engine, secret=b"another").verify_audit()
    assert not result.ok and result.seq == 1 and "secret differs" in result.problem


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        RegistrySettings(secret=value)  # type: ignore[arg-type]
    message = str(info.value)
    assert "registry.secret" in message and "DRIFTD_REGISTRY__SECRET" in message
    assert "empty" in message and "unset it" in message
