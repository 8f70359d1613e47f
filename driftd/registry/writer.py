"""One registry write transaction: the audit head lock, idempotency, audit records, outbox rows.

Every write runs inside ``transaction``: it locks the single audit-head row first (which
serialises writers on PostgreSQL; SQLite writers are serialised by ``BEGIN IMMEDIATE``), replays
the stored answer when the actor sent this request id before, lets the change append audit
records and outbox events through the ``Writer``, and commits them all at once — or none of them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from driftd.db import write_transaction
from driftd.registry import schema as t
from driftd.registry.audit import canonical, record_hash
from driftd.registry.errors import Conflict, InvalidRequest
from driftd.registry.head import lock_for_write, seal


@dataclass
class Writer:
    """What a change may do inside its transaction."""

    conn: sa.Connection
    actor: str
    request_id: str
    now: float
    secret: bytes | None
    seq: int
    head_hash: str
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def audit(
        self,
        action: str,
        subject: str,
        old: Any = None,
        new: Any = None,
        reason: str = "",
    ) -> None:
        """Append one audit record chained to the previous one."""
        self.seq += 1
        old_s, new_s = canonical(old), canonical(new)
        h = record_hash(
            self.secret,
            self.seq,
            self.now,
            self.actor,
            action,
            subject,
            old_s,
            new_s,
            reason,
            self.request_id,
            self.head_hash,
        )
        self.conn.execute(
            t.audit.insert().values(
                seq=self.seq,
                ts=self.now,
                actor=self.actor,
                action=action,
                subject=subject,
                old=old_s,
                new=new_s,
                reason=reason,
                request_id=self.request_id,
                prev_hash=self.head_hash,
                hash=h,
            )
        )
        self.head_hash = h

    def event(self, event: str, model: str, payload: dict[str, Any]) -> None:
        """Queue an outbox event; it is written in this same transaction."""
        body = {"event": event, "model": model, "ts": self.now, "actor": self.actor, **payload}
        self.conn.execute(
            t.outbox.insert().values(
                created_at=self.now, event=event, model=model, payload=canonical(body)
            )
        )


def fingerprint(action: str, payload: Any) -> str:
    """What makes two requests with one request id the same request."""
    return hashlib.sha256(canonical([action, payload]).encode()).hexdigest()


def transaction(
    engine: sa.Engine,
    secret: bytes | None,
    clock: Callable[[], float],
    actor: str,
    action: str,
    payload: Any,
    request_id: str | None,
    change: Callable[[Writer], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """Run ``change`` once per request id; return its answer and whether it was a replay."""
    if not actor:
        raise InvalidRequest("an actor is required for every registry write")
    fp = fingerprint(action, payload)
    with write_transaction(engine) as conn:
        head = lock_for_write(conn, secret)  # refuses another key, or a head moved back
        if request_id:
            # Scoped by actor: another caller's use of the same key is not this request.
            r = t.requests.c
            prior = conn.execute(
                sa.select(t.requests).where((r.actor == actor) & (r.request_id == request_id))
            ).first()
            if prior is not None:
                if prior.fingerprint != fp:
                    raise Conflict(
                        f"request id {request_id!r} was already used for a different request "
                        f"({prior.action} by {prior.actor}); use a new request id"
                    )
                return dict(prior.response), True
        w = Writer(
            conn=conn,
            actor=actor,
            request_id=request_id or uuid.uuid4().hex,
            now=clock(),
            secret=secret,
            seq=int(head.seq),
            head_hash=str(head.hash),
        )
        answer = change(w)
        seal(conn, secret, w.seq, w.head_hash)
        if request_id:
            conn.execute(
                t.requests.insert().values(
                    request_id=request_id,
                    actor=actor,
                    action=action,
                    fingerprint=fp,
                    response=answer,
                    created_at=w.now,
                )
            )
        return answer, False
