"""The hash-chained audit log: record hashing, the head's seal and chain verification, apart
from the database.

Each record's hash is SHA-256 over a canonical encoding of its fields and the previous record's
hash — HMAC-SHA256 keyed with the server secret when one is configured, so nobody without the
key can rewrite the chain consistently. The head row (the last record's sequence and hash) is
sealed too: its ``key_check`` is an HMAC over the sequence, the hash and the key's fingerprint
('' when unkeyed), so removing the tail and moving the head back needs the key. ``verify`` walks
records in sequence order and names the first one that was altered (its hash no longer
matches), removed (a gap in the sequence, or a tail shorter than the head row says) or inserted
(a record that does not chain to its predecessor, or a tail longer than the head row says); a
head whose seal does not match; and, given a ``Witness`` (a head someone saw earlier, e.g. from
an ``audit.head`` event), a log that no longer holds that record with that hash — the one check
that also catches a whole log rewritten with its head, or an old head row put back.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

GENESIS = "0" * 64
HEAD_EVENT = "audit.head"  # the outbox event that publishes the head for witnesses
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


_KEY_CHECK_TEXT = b"driftd audit key check"


def key_fingerprint(secret: bytes) -> str:
    """A fingerprint of the audit secret that does not reveal it."""
    return hmac.new(secret, _KEY_CHECK_TEXT, hashlib.sha256).hexdigest()


def head_seal(secret: bytes | None, seq: int, head_hash: str) -> str:
    """The head row's ``key_check``: '' when unkeyed, else an HMAC binding the head's sequence
    and hash to the key, so that nobody without it can move the head."""
    if not secret:
        return ""
    body = _enc.encode(["driftd audit head", seq, head_hash, key_fingerprint(secret)])
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class Key(enum.Enum):
    """How the head row's ``key_check`` relates to the key a reader or writer holds."""

    NEW = "new"  # nothing written yet: any key may start the log
    UNKEYED = "unkeyed"  # written and read without a key
    SEALED = "sealed"  # keyed; the seal matches the head's sequence and hash under this key
    LEGACY = "legacy"  # keyed by a driftd before head seals: the key matches, the head is unbound
    MISSING = "missing"  # keyed, and no key is held
    NOT_KEYED = "not_keyed"  # written without a key, and a key is held
    MISMATCH = "mismatch"  # keyed: another key, or the head row was altered


def head_key(secret: bytes | None, seq: int, head_hash: str, key_check: str | None) -> Key:
    """Classify the head row against ``secret`` (see ``Key``)."""
    if key_check is None and seq == 0:
        return Key.NEW
    if not key_check:
        return Key.NOT_KEYED if secret else Key.UNKEYED
    if not secret:
        return Key.MISSING
    if hmac.compare_digest(key_check, head_seal(secret, seq, head_hash)):
        return Key.SEALED
    if hmac.compare_digest(key_check, key_fingerprint(secret)):
        return Key.LEGACY
    return Key.MISMATCH


@dataclass(frozen=True, slots=True)
class Head:
    """The head row: the last record's sequence and hash, and their seal."""

    seq: int
    hash: str
    key_check: str | None


_WITNESS = re.compile(r"([1-9][0-9]{0,18}):([0-9a-fA-F]{64})")


@dataclass(frozen=True, slots=True)
class Witness:
    """A head someone outside the database saw: record ``seq`` had hash ``hash``."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Witness:
        """``SEQ:HASH`` as an ``audit.head`` event's ``witness`` field carries it."""
        m = _WITNESS.fullmatch(text.strip())
        if m is None:
            raise ValueError(
                f"witness {text.strip()!r} is not SEQ:HASH: expected a record number >= 1, a "
                "colon and that record's hash (64 hex digits), as an audit.head event carries"
            )
        return cls(int(m[1]), m[2].lower())

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


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


_REFUSED = {
    Key.MISSING: "the audit log is keyed (HMAC-SHA256 under registry.secret) and no key is "
    "configured: set registry.secret (DRIFTD_REGISTRY__SECRET) to the secret it was written "
    "with to verify it",
    Key.NOT_KEYED: "the audit log was written without a key (its head row has no key check) "
    "but registry.secret is set: it was written by processes without the secret, or re-chained "
    "without the key (plain SHA-256)",
}
_OTHER_KEY = (
    "record 1 does not match its hash under the configured secret, and neither does the head "
    "row: the secret differs from the one the log was written with (or the whole log was "
    "rewritten without it)"
)
_LEGACY = (
    "the head row is not sealed: it was last written by a driftd without head seals, or "
    "altered; the next registry write seals it (check the log against a witness first: "
    "--expect-head)"
)


def _record_problem(
    row: tuple[Any, ...],
    expected: int,
    prev_hash: str,
    key: Key,
    secret: bytes | None,
    expect: Witness | None,
) -> tuple[str, int] | None:
    """What is wrong with one record, expected to be number ``expected`` chained to
    ``prev_hash``, and the sequence to name; None when it is sound."""
    seq, ts, actor, action, subject, old, new, reason, request_id, stored_prev, stored = row
    if seq > expected:
        what = f"record {expected}" if seq == expected + 1 else f"records {expected}-{seq - 1}"
        return f"{what} removed: the sequence jumps to {seq}", expected
    if seq < expected:  # cannot happen with a primary key, but a copy may hold it
        return f"record {seq} duplicated", seq
    fields = (actor, action, subject, old, new, reason, request_id)
    if record_hash(secret, seq, ts, *fields, stored_prev) != stored:
        if seq == 1 and key is Key.MISMATCH:
            return _OTHER_KEY, seq
        return f"record {seq} altered: its content does not match its hash", seq
    if stored_prev != prev_hash:
        return (
            f"record {seq} does not chain to record {seq - 1}: one of them was altered "
            f"or record {seq} was inserted",
            seq,
        )
    if expect is not None and seq == expect.seq and stored != expect.hash:
        return (
            f"record {seq} does not match the witness: its hash is {stored}, the witness "
            f"saw {expect.hash} (the log was rewritten up to record {seq}, or the witness "
            "is of another log)",
            seq,
        )
    return None


def _end_problem(
    last: int, last_hash: str, head: Head, key: Key, expect: Witness | None
) -> tuple[str, int | None] | None:
    """What is wrong where the walk ended at record ``last`` with hash ``last_hash``, given
    the head row, its seal and the witness; None when nothing is."""
    if last < head.seq:
        return (
            f"record {last + 1} removed: the log ends at {last}, the head says {head.seq}",
            last + 1,
        )
    if last > head.seq:
        return f"record {head.seq + 1} inserted after the head ({head.seq})", head.seq + 1
    if last_hash != head.hash:
        return f"record {last} altered: it does not match the head's hash", last
    if key is Key.MISMATCH:
        return (
            f"the head row was altered: its seal does not match sequence {head.seq} and its "
            f"hash under the configured secret (records after {head.seq} may have been removed)",
            head.seq + 1,
        )
    if key is Key.LEGACY:
        return _LEGACY, None
    if expect is not None and expect.seq > last:
        return (
            f"record {expect.seq} is missing: the log ends at {last}; the witness saw it with "
            f"hash {expect.hash} (records were removed and the head row put back)",
            expect.seq,
        )
    return None


def verify(
    rows: Iterable[tuple[Any, ...]],
    head: Head,
    secret: bytes | None,
    expect: Witness | None = None,
) -> VerifyResult:
    """Walk ``rows`` (the record fields in ``AuditRecord`` order, by ascending ``seq``) against
    the head row and, if given, a witness."""
    key = head_key(secret, head.seq, head.hash, head.key_check)
    if key in _REFUSED:
        return VerifyResult(False, 0, head.seq, _REFUSED[key])
    prev_hash = GENESIS
    expected = 1
    n = 0
    for row in rows:
        n += 1
        problem = _record_problem(row, expected, prev_hash, key, secret, expect)
        if problem is not None:
            return VerifyResult(False, n, head.seq, *problem)
        prev_hash = row[10]  # the record's hash: the next one must chain to it
        expected = row[0] + 1
    end = _end_problem(expected - 1, prev_hash, head, key, expect)
    if end is not None:
        return VerifyResult(False, n, head.seq, *end)
    return VerifyResult(True, n, head.seq)
