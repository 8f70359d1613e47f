"""The hash-chained audit log: record hashing and chain verification, apart from the database.

Each record's hash is SHA-256 over a canonical encoding of its fields and the previous record's
hash — HMAC-SHA256 keyed with the server secret when one is configured, so nobody without the
key can rewrite the chain consistently. ``verify`` walks records in sequence order and names the
first one that was altered (its hash no longer matches), removed (a gap in the sequence, or a
tail shorter than the head row says) or inserted (a record that does not chain to its
predecessor, or a tail longer than the head row says).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

GENESIS = "0" * 64
_enc = msgspec.json.Encoder(order="sorted")


def canonical(value: Any) -> str:
    """JSON text with sorted keys and no whitespace: the form stored and hashed."""
    return _enc.encode(value).decode()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit record as stored (``old`` and ``new`` are canonical JSON text)."""

    seq: int
    ts: float
    actor: str
    action: str
    subject: str
    old: str
    new: str
    reason: str
    request_id: str
    prev_hash: str
    hash: str


def record_hash(
    secret: bytes | None,
    seq: int,
    ts: float,
    actor: str,
    action: str,
    subject: str,
    old: str,
    new: str,
    reason: str,
    request_id: str,
    prev_hash: str,
) -> str:
    """The hash of one record's fields chained to ``prev_hash``."""
    body = _enc.encode([seq, ts, actor, action, subject, old, new, reason, request_id, prev_hash])
    if secret:
        return hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of walking the chain; ``problem`` names the first bad record."""

    ok: bool
    records: int
    head_seq: int
    problem: str = ""
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and the API."""
        return {
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "problem": self.problem,
            "seq": self.seq,
        }


def verify(
    rows: Iterable[tuple[Any, ...]], head_seq: int, head_hash: str, secret: bytes | None
) -> VerifyResult:
    """Walk ``rows`` (the record fields in ``AuditRecord`` order, by ascending ``seq``)."""
    prev_hash = GENESIS
    expected = 1
    n = 0
    for row in rows:
        seq, ts, actor, action, subject, old, new, reason, request_id, stored_prev, stored = row
        n += 1
        if seq > expected:
            what = f"record {expected}" if seq == expected + 1 else f"records {expected}-{seq - 1}"
            return VerifyResult(
                False, n, head_seq, f"{what} removed: the sequence jumps to {seq}", expected
            )
        if seq < expected:  # cannot happen with a primary key, but a copy may hold it
            return VerifyResult(False, n, head_seq, f"record {seq} duplicated", seq)
        fields = (actor, action, subject, old, new, reason, request_id)
        actual = record_hash(secret, seq, ts, *fields, stored_prev)
        if actual != stored:
            return VerifyResult(
                False,
                n,
                head_seq,
                f"record {seq} altered: its content does not match its hash",
                seq,
            )
        if stored_prev != prev_hash:
            return VerifyResult(
                False,
                n,
                head_seq,
                f"record {seq} does not chain to record {seq - 1}: one of them was altered "
                f"or record {seq} was inserted",
                seq,
            )
        prev_hash = stored
        expected = seq + 1
    last = expected - 1
    if last < head_seq:
        return VerifyResult(
            False,
            n,
            head_seq,
            f"record {last + 1} removed: the log ends at {last}, the head says {head_seq}",
            last + 1,
        )
    if last > head_seq:
        return VerifyResult(
            False,
            n,
            head_seq,
            f"record {head_seq + 1} inserted after the head ({head_seq})",
            head_seq + 1,
        )
    if prev_hash != head_hash:
        return VerifyResult(
            False, n, head_seq, f"record {last} altered: it does not match the head's hash", last
        )
    return VerifyResult(True, n, head_seq)
