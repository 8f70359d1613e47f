"""The audit head row in the database: locked and checked before a write, sealed after it, and
published as an ``audit.head`` outbox event for external witnesses.

Writers refuse to extend a head whose seal does not match (a different key, or a head row moved
back after the tail was removed): sealing it again would make the removal undetectable. A head
last written by a driftd before head seals (``Key.LEGACY``) is sealed by the next write.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from driftd.db import write_transaction
from driftd.registry import schema as t
from driftd.registry.audit import (
    HEAD_EVENT,
    Key,
    Witness,
    canonical,
    head_key,
    head_seal,
    record_hash,
)
from driftd.registry.errors import Conflict, InvalidRequest

log = logging.getLogger(__name__)

_OTHER_KEY = (
    "the audit secret differs from the one this registry's log was written with; "
    "set the same registry.secret (DRIFTD_REGISTRY__SECRET) on every driftd process"
)


def _select_head() -> sa.Select[Any]:
    return sa.select(t.audit_head).where(t.audit_head.c.id == 1).with_for_update()


def _last_record_verifies(conn: sa.Connection, secret: bytes | None, seq: int) -> bool:
    """Whether record ``seq`` matches its hash under ``secret`` (then the key is the right one)."""
    r = conn.execute(sa.select(t.audit).where(t.audit.c.seq == seq)).first()
    if r is None:
        return False
    fields = (r.ts, r.actor, r.action, r.subject, r.old, r.new, r.reason, r.request_id)
    return record_hash(secret, r.seq, *fields, r.prev_hash) == str(r.hash)


def lock_for_write(conn: sa.Connection, secret: bytes | None) -> sa.Row[Any]:
    """Lock the head row (serialising writers) and check it may be extended with ``secret``."""
    head = conn.execute(_select_head()).first()
    if head is None:
        raise InvalidRequest(
            "the registry tables are missing their head row; run driftd db upgrade"
        )
    key = head_key(secret, int(head.seq), str(head.hash), head.key_check)
    if key in (Key.MISSING, Key.NOT_KEYED):
        raise Conflict(_OTHER_KEY)
    if key is Key.MISMATCH:
        if not _last_record_verifies(conn, secret, int(head.seq)):
            raise Conflict(_OTHER_KEY)
        raise Conflict(
            f"the audit head row was altered: its seal does not match sequence {head.seq} and "
            "its hash (records may have been removed from the end of the log); registry writes "
            "are refused until it is repaired: run driftd audit verify"
        )
    return head


def seal(conn: sa.Connection, secret: bytes | None, seq: int, head_hash: str) -> None:
    """Move the head row to record ``seq`` and seal it under ``secret``."""
    conn.execute(
        t.audit_head.update()
        .where(t.audit_head.c.id == 1)
        .values(seq=seq, hash=head_hash, key_check=head_seal(secret, seq, head_hash))
    )


def _last_published(conn: sa.Connection) -> Witness | None:
    o = t.outbox
    payload = conn.execute(
        sa.select(o.c.payload).where(o.c.event == HEAD_EVENT).order_by(o.c.id.desc()).limit(1)
    ).scalar()
    if payload is None:
        return None
    body = json.loads(payload)
    return Witness(int(body["seq"]), str(body["hash"]))


def publish_head(engine: sa.Engine, clock: Callable[[], float] = time.time) -> Witness | None:
    """Write an ``audit.head`` outbox event with the head's sequence and hash; None when there
    is nothing new to publish (an empty log, the head already published) or when the log no
    longer holds the last published head (logged as an error: a witness alarm)."""
    with write_transaction(engine) as conn:
        head = conn.execute(_select_head()).first()  # outbox ids must commit in id order
        if head is None or int(head.seq) == 0:
            return None
        now = Witness(int(head.seq), str(head.hash))
        prior = _last_published(conn)
        if prior == now:
            return None
        if prior is not None:
            kept = conn.execute(sa.select(t.audit.c.hash).where(t.audit.c.seq == prior.seq))
            if prior.seq > now.seq or kept.scalar() != prior.hash:
                log.error(
                    "the audit log no longer holds the head published last (%s; head now %s): "
                    "records were removed or rewritten; run driftd audit verify --expect-head %s",
                    prior,
                    now,
                    prior,
                )
                return None
        ts = clock()
        body = {"event": HEAD_EVENT, "model": "", "ts": ts, "actor": "driftd",
                "seq": now.seq, "hash": now.hash, "witness": str(now)}  # fmt: skip
        row = {"created_at": ts, "event": HEAD_EVENT, "model": "", "payload": canonical(body)}
        conn.execute(t.outbox.insert().values(**row))
        return now
