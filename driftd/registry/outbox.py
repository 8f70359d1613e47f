"""The outbox dispatcher: delivers registry events to webhooks and the Kafka control topic.

Every registry change writes its events to ``registry_outbox`` in the change's own
transaction, so an event exists if and only if its change committed. The dispatcher then
delivers each row to each target, in outbox-id order, tracking progress in one cursor row per
target (``registry_outbox_cursors``: the last id handled, the attempts spent on the next one).

Guarantees:

- Nothing is lost once a target started. A new cursor starts at 0 (the whole history) for the
  Kafka control topic and for a webhook with ``replay = true``; a webhook configured without
  it starts after the newest row that existed when its cursor was created ("from now": a
  receiver added today is not flooded with last year's events). From there on the cursor only
  moves past a row once the target accepted it (2xx / broker ack),
  filtered it out, or it was dead-lettered after ``max_attempts`` (kept in
  ``registry_outbox_dead``). Skipping by id is safe because outbox ids commit in id order:
  every registry write holds the audit-head row lock (or SQLite's write lock) from before its
  insert until its commit, so no smaller id can appear after a larger one is visible.
- At least once, duplicates only in one window. The cursor is committed after each accepted
  row, so a crash between the target's acceptance and that commit redelivers that one row —
  with the same ``webhook-id`` (``<target>-<outbox id>``), which lets the receiver
  drop it. That window is the only source of duplicates: at most one per crash per target.
- Ordered per target, isolated between targets: a failing row blocks later rows for its own
  target only (until it succeeds or is dead-lettered); other targets carry on.
- Witnesses: with ``witness_every_s``, ``run`` also writes an ``audit.head`` event (the audit
  head's sequence and hash, when it moved) that often; whoever keeps those can later prove the
  log still holds what they saw (``driftd audit verify --expect-head SEQ:HASH``).
- One sender per target at a time, across processes: on PostgreSQL the cursor row is locked
  ``FOR UPDATE SKIP LOCKED`` for the whole read-send-advance step (a second dispatcher skips a
  busy target); on SQLite an exclusive ``flock`` on ``<database>.outbox-<target>.lock`` does
  the same, so the database's write lock is not held across a network call (that would stall
  every registry and checkpoint write for up to the webhook timeout).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from driftd.config import WebhookSettings
from driftd.db import write_transaction
from driftd.registry import schema as t
from driftd.registry.head import publish_head
from driftd.registry.kafka import KafkaControl, KafkaTarget
from driftd.registry.webhook import (
    DeliveryError,
    OutboxRow,
    RetryPolicy,
    WebhookTarget,
)

__all__ = [
    "DeliveryError",
    "Dispatcher",
    "KafkaControl",
    "KafkaTarget",
    "OutboxRow",
    "RetryPolicy",
    "Target",
    "WebhookTarget",
    "dispatcher_from_settings",
    "status",
]

log = logging.getLogger(__name__)

# Rows read per step while looking for the next one the target wants.
_SCAN = 200


class Target(Protocol):
    """Somewhere outbox rows go. ``send`` returns once the row is durably accepted."""

    name: str
    policy: RetryPolicy

    def wants(self, event: str) -> bool:
        """Whether this target takes ``event`` rows (the others are skipped, not sent)."""
        ...

    def send(self, row: OutboxRow) -> None:
        """Deliver ``row``; raise on any failure (the row is then retried)."""
        ...


_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class Dispatcher:
    """Delivers outbox rows to ``targets``; any number may run on one database."""

    def __init__(
        self,
        engine: sa.Engine,
        targets: Sequence[Target],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        witness_every_s: float | None = None,
        start_at_head: Collection[str] = (),
    ) -> None:
        """``start_at_head`` names the targets whose new cursor starts after the newest row
        (the others start at 0); a cursor that exists is never moved by it."""
        names = [tg.name for tg in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique: {names}")
        self.engine = engine
        self.targets = list(targets)
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._pg = engine.dialect.name != "sqlite"
        self.witness_every_s = witness_every_s
        self.start_at_head = frozenset(start_at_head)

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Dispatch until ``stop`` is set, waiting ``poll_s`` whenever nothing was delivered;
        every ``witness_every_s`` (if set) publish the audit head first (``publish_head``)."""
        next_witness = time.monotonic()
        while not stop.is_set():
            if self.witness_every_s is not None and time.monotonic() >= next_witness:
                next_witness = time.monotonic() + self.witness_every_s
                try:
                    publish_head(self.engine, self.clock)
                except sa.exc.DBAPIError:
                    log.exception("publishing the audit head failed; retrying next period")
            try:
                delivered = self.run_once()
            except sa.exc.DBAPIError:
                log.exception("outbox dispatch failed; retrying in %.1f s", poll_s)
                delivered = 0
            if not delivered:
                stop.wait(poll_s)

    def run_once(self, limit: int = 100) -> int:
        """Deliver up to ``limit`` due rows per target; return how many were delivered."""
        self._ensure_cursors()
        delivered = 0
        for target in self.targets:
            for _ in range(limit):
                outcome = self._step(target)
                if outcome == "delivered":
                    delivered += 1
                elif outcome != "skipped":
                    break
        return delivered

    def _ensure_cursors(self) -> None:
        """Create missing cursors: at 0, or after the newest row for ``start_at_head``."""
        if not self.targets:
            return
        c = t.outbox_cursors
        with self.engine.connect() as conn:
            have = set(conn.execute(sa.select(c.c.target)).scalars())
        missing = [tg.name for tg in self.targets if tg.name not in have]
        if missing:
            ins = pg_insert if self._pg else sqlite_insert
            with write_transaction(self.engine) as conn:
                head = 0
                if self.start_at_head.intersection(missing):
                    head = int(
                        conn.execute(
                            sa.select(sa.func.coalesce(sa.func.max(t.outbox.c.id), 0))
                        ).scalar_one()
                    )
                values = [
                    {
                        "target": name,
                        "last_id": head if name in self.start_at_head else 0,
                        "attempts": 0,
                        "next_attempt_at": 0.0,
                        "last_error": "",
                    }
                    for name in missing
                ]
                conn.execute(ins(c).values(values).on_conflict_do_nothing())

    @contextlib.contextmanager
    def _claim(self, name: str) -> Iterator[tuple[bool, sa.Connection | None]]:
        """Hold the target exclusively: (False, None) when another dispatcher holds it;
        on PostgreSQL also the transaction that holds the cursor row lock."""
        if self._pg:
            with write_transaction(self.engine) as conn:
                got = conn.execute(
                    sa.select(t.outbox_cursors.c.target)
                    .where(t.outbox_cursors.c.target == name)
                    .with_for_update(skip_locked=True)
                ).first()
                yield (got is not None, conn)
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            with _LOCAL_GUARD:
                lock = _LOCAL_LOCKS.setdefault(name, threading.Lock())
            if not lock.acquire(blocking=False):
                yield (False, None)
                return
            try:
                yield (True, None)
            finally:
                lock.release()
            return
        with open(f"{database}.outbox-{name}.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield (False, None)
                return
            try:
                yield (True, None)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _tx(self, held: sa.Connection | None) -> contextlib.AbstractContextManager[sa.Connection]:
        return contextlib.nullcontext(held) if held is not None else write_transaction(self.engine)

    def _step(self, target: Target) -> str:
        """Handle at most one row for ``target``: delivered, skipped (filtered out), failed,
        dead, idle (nothing new), waiting (backing off) or busy (held elsewhere)."""
        c = t.outbox_cursors
        with self._claim(target.name) as (ok, held):
            if not ok:
                return "busy"
            now = self.clock()
            with self._tx(held) as conn:
                cur = conn.execute(sa.select(c).where(c.c.target == target.name)).one()
                if cur.next_attempt_at > now:
                    return "waiting"
                rows = conn.execute(
                    sa.select(t.outbox)
                    .where(t.outbox.c.id > cur.last_id)
                    .order_by(t.outbox.c.id)
                    .limit(_SCAN)
                ).all()
            if not rows:
                return "idle"
            wanted = next((r for r in rows if target.wants(r.event)), None)
            if wanted is None:  # all filtered out: move past them without sending
                self._advance(held, target.name, int(rows[-1].id))
                return "skipped"
            row = OutboxRow(
                int(wanted.id),
                float(wanted.created_at),
                str(wanted.event),
                str(wanted.model),
                str(wanted.payload),
            )
            try:
                target.send(row)
            except Exception as exc:
                return self._failed(held, target, row, int(cur.attempts) + 1, exc)
            self._advance(held, target.name, row.id)
            return "delivered"

    def _advance(self, held: sa.Connection | None, name: str, last_id: int) -> None:
        c = t.outbox_cursors
        with self._tx(held) as conn:
            conn.execute(
                c.update()
                .where(c.c.target == name)
                .values(last_id=last_id, attempts=0, next_attempt_at=0.0, last_error="")
            )

    def _failed(
        self,
        held: sa.Connection | None,
        target: Target,
        row: OutboxRow,
        attempts: int,
        exc: Exception,
    ) -> str:
        """Back off (full jitter), or dead-letter the row once its attempts are spent."""
        error = f"{type(exc).__name__}: {exc}"[:2000]
        now = self.clock()
        p = target.policy
        c = t.outbox_cursors
        if attempts >= p.max_attempts:
            log.error("outbox row %d dead-lettered for %s: %s", row.id, target.name, error)
            with self._tx(held) as conn:
                conn.execute(
                    t.outbox_dead.insert().values(
                        target=target.name,
                        outbox_id=row.id,
                        attempts=attempts,
                        error=error,
                        dead_at=now,
                    )
                )
            self._advance(held, target.name, row.id)
            return "dead"
        delay = self.rng.uniform(0, min(p.max_backoff_s, p.backoff_s * 2 ** (attempts - 1)))
        log.warning(
            "outbox row %d to %s failed (attempt %d/%d), retry in %.1f s: %s",
            row.id,
            target.name,
            attempts,
            p.max_attempts,
            delay,
            error,
        )
        with self._tx(held) as conn:
            conn.execute(
                c.update()
                .where(c.c.target == target.name)
                .values(attempts=attempts, next_attempt_at=now + delay, last_error=error)
            )
        return "failed"


def dispatcher_from_settings(
    engine: sa.Engine,
    webhooks: Sequence[WebhookSettings],
    kafka: KafkaControl | None = None,
    clock: Callable[[], float] = time.time,
    witness_every_s: float | None = None,
) -> Dispatcher:
    """A dispatcher for the configured webhooks and, optionally, the Kafka control topic; with
    ``witness_every_s`` its ``run`` also publishes the audit head that often. A webhook without
    ``replay`` that never delivered starts after the newest event."""
    targets: list[Target] = [WebhookTarget(w) for w in webhooks]
    if kafka is not None:
        targets.append(KafkaTarget(kafka))
    fresh = [w.name for w in webhooks if not w.replay]
    return Dispatcher(
        engine, targets, clock=clock, witness_every_s=witness_every_s, start_at_head=fresh
    )


def status(engine: sa.Engine, targets: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per target (every cursor, plus ``targets`` not started yet): where it stands."""
    c, o, d = t.outbox_cursors, t.outbox, t.outbox_dead
    with engine.connect() as conn:
        cursors = {r.target: r for r in conn.execute(sa.select(c))}
        dead = {
            str(name): int(n)
            for name, n in conn.execute(sa.select(d.c.target, sa.func.count()).group_by(d.c.target))
        }
        out = []
        for name in sorted(set(cursors) | set(targets)):
            cur = cursors.get(name)
            last_id = int(cur.last_id) if cur else 0
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(o).where(o.c.id > last_id)
            ).scalar_one()
            out.append(
                {
                    "target": name,
                    "last_id": last_id,
                    "pending": int(pending),
                    "attempts": int(cur.attempts) if cur else 0,
                    "next_attempt_at": float(cur.next_attempt_at) if cur else 0.0,
                    "last_error": str(cur.last_error) if cur else "",
                    "dead": int(dead.get(name, 0)),
                }
            )
    return out
