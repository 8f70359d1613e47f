"""The leader lease: one instance at a time leads, under a fencing epoch.

A row in ``driftd_leases`` names the holder, its epoch and when the lease expires, by the
database's clock (so instances' clocks need not agree). The holder renews it every
``renew_s``; anyone may take it over once it has expired, which raises the epoch by one and
opens a row in ``driftd_lease_history`` (each epoch's holder, when it was acquired, the expiry
of its last renewal and how it ended), the record that shows one leader at a time.

Safety does not rest on timing alone:

- The holder counts its lease from *before* it sent the renewal, on its own monotonic clock,
  and stops acting ``guard_s`` before that runs out: a leader cut off from the database steps
  down before anyone else can take over.
- Every write the leader makes calls ``fence(conn)`` inside its own transaction: it reads the
  lease row ``FOR SHARE`` and refuses (``FencedOut``) unless it still carries this holder and
  epoch. A takeover must update that row, so it waits for a fenced write in flight to commit,
  and a write that starts after it sees the new epoch. A stale epoch never lands.
- On PostgreSQL the leader's sessions set ``idle_in_transaction_session_timeout``, so a
  transaction left open by a partitioned leader cannot hold the row lock for long.

SQLite (the embedded default) runs the same code; its one instance is its own leader.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from driftd.db import lease_history, leases, write_transaction
from driftd.errors import DriftdError

log = logging.getLogger("driftd.leader")


class FencedOut(DriftdError):
    """A write carried an epoch that no longer holds the lease: it was refused."""


def holder_id() -> str:
    """This process's name in the lease table: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def db_now(conn: sa.Connection) -> float:
    """The database's clock in Unix seconds (PostgreSQL); this host's for SQLite."""
    if conn.dialect.name == "postgresql":
        return float(
            conn.exec_driver_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").scalar_one()
        )
    return time.time()


def set_session_timeouts(engine: sa.Engine, idle_in_tx_ms: int) -> None:
    """On PostgreSQL, end this engine's sessions that sit idle inside a transaction for
    ``idle_in_tx_ms`` (a partitioned leader cannot hold a lock on the lease row for longer).

    Every session must carry it: the pool is emptied, so connections opened before (a schema
    check at start-up) are not reused without it."""
    if engine.dialect.name != "postgresql":
        return

    @sa.event.listens_for(engine, "connect")
    def _timeouts(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"SET idle_in_transaction_session_timeout = {int(idle_in_tx_ms)}")
        cur.close()
        dbapi_conn.commit()

    engine.dispose()


class Lease:
    """Acquires, renews and releases the lease named ``name`` for ``holder``."""

    def __init__(
        self,
        engine: sa.Engine,
        name: str,
        lease_s: float,
        renew_s: float,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.name = name
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.holder = holder or holder_id()
        self.clock = clock
        self.guard_s = min(max(1.0, 0.1 * lease_s), lease_s / 3)
        self.epoch: int | None = None
        self._valid_until = -1.0  # local monotonic time this holder may act until
        self._next_try = -1.0
        self.failures = 0  # renewals that failed (database errors)
        self._remaining = 0.0  # seconds left on another holder's lease, at the last try

    # -- state -----------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        """True while this holder leads: it has the lease and its local deadline holds."""
        return self.epoch is not None and self.clock() < self._valid_until

    def until_next_try(self) -> float:
        """Seconds until the next renewal (or acquisition attempt) is due."""
        return self._next_try - self.clock()

    def due(self) -> bool:
        """True when it is time to renew (or to try to acquire)."""
        return self.clock() >= self._next_try

    # -- acquiring and renewing --------------------------------------------------------------
    def tick(self) -> bool:
        """Renew or acquire when due; return whether this holder leads now."""
        if self.due():
            self.renew()
        elif self.epoch is not None and not self.held:
            self._lost("its lease ran out before a renewal succeeded")
        return self.held

    def renew(self) -> bool:
        """Acquire the lease (when free or expired) or renew it (when held); True when held."""
        t0 = self.clock()
        self._next_try = t0 + self.renew_s
        try:
            with write_transaction(self.engine) as conn:
                got = self._acquire(conn)
        except sa.exc.SQLAlchemyError as exc:
            self.failures += 1
            log.warning("lease renewal failed", extra={"lease": self.name, "error": str(exc)[:300]})
            self._next_try = t0 + min(self.renew_s, 1.0)
            if self.epoch is not None and not self.held:
                self._lost("cut off from the database until its lease ran out")
            return self.held
        if got is None:
            if self.epoch is not None:
                self._lost("another holder took the lease over")
            # Try again when the holder's lease runs out (by the database's clock), not a
            # whole renew_s later: a dead leader is replaced within lease_s of its last renewal.
            self._next_try = t0 + min(self.renew_s, max(0.05, self._remaining + 0.05))
            return False
        if self.epoch != got:
            log.info("leading", extra={"lease": self.name, "epoch": got, "holder": self.holder})
        self.epoch = got
        self._valid_until = t0 + self.lease_s - self.guard_s
        return True

    def _acquire(self, conn: sa.Connection) -> int | None:
        c = leases.c
        row = conn.execute(sa.select(leases).where(c.name == self.name).with_for_update()).first()
        now = db_now(conn)
        until = now + self.lease_s
        h = lease_history.c
        if row is None:
            conn.execute(
                sa.insert(leases).values(
                    name=self.name, holder=self.holder, epoch=1, expires_at=until, renewed_at=now
                )
            )
            self._opened(conn, 1, now, until)
            return 1
        if row.holder == self.holder and row.epoch == self.epoch:
            conn.execute(
                sa.update(leases)
                .where(c.name == self.name)
                .values(expires_at=until, renewed_at=now)
            )
            conn.execute(
                sa.update(lease_history)
                .where((h.name == self.name) & (h.epoch == row.epoch))
                .values(valid_until=until)
            )
            return int(row.epoch)
        if row.expires_at > now:
            self._remaining = float(row.expires_at) - now
            return None  # someone else holds it
        epoch = int(row.epoch) + 1
        conn.execute(
            sa.update(leases)
            .where((c.name == self.name) & (c.epoch == row.epoch))
            .values(holder=self.holder, epoch=epoch, expires_at=until, renewed_at=now)
        )
        conn.execute(
            sa.update(lease_history)
            .where((h.name == self.name) & (h.epoch == row.epoch) & h.ended.is_(None))
            .values(ended="expired")
        )
        self._opened(conn, epoch, now, until)
        return epoch

    def _opened(self, conn: sa.Connection, epoch: int, now: float, until: float) -> None:
        conn.execute(
            sa.insert(lease_history).values(
                name=self.name, epoch=epoch, holder=self.holder, acquired_at=now, valid_until=until
            )
        )

    def _lost(self, why: str) -> None:
        log.warning("stepped down", extra={"lease": self.name, "epoch": self.epoch, "why": why})
        self.epoch = None
        self._valid_until = -1.0

    def release(self) -> None:
        """Give the lease up now (a clean stop): the next instance need not wait it out."""
        epoch, self.epoch = self.epoch, None
        self._valid_until = -1.0
        if epoch is None:
            return
        try:
            with write_transaction(self.engine) as conn:
                now = db_now(conn)
                c, h = leases.c, lease_history.c
                done = conn.execute(
                    sa.update(leases)
                    .where((c.name == self.name) & (c.epoch == epoch) & (c.holder == self.holder))
                    .values(expires_at=now)
                ).rowcount
                if done:
                    conn.execute(
                        sa.update(lease_history)
                        .where((h.name == self.name) & (h.epoch == epoch))
                        .values(valid_until=now, ended="released")
                    )
        except sa.exc.SQLAlchemyError as exc:
            log.warning("lease release failed", extra={"lease": self.name, "error": str(exc)})

    # -- fencing ---------------------------------------------------------------------------
    def fence(self, conn: sa.Connection | None) -> int:
        """Inside a write transaction: this holder's epoch, if it still holds the lease row;
        else ``FencedOut``. The row stays share-locked until the transaction ends."""
        epoch = self.epoch
        if epoch is None or not self.held:
            raise FencedOut(f"lease {self.name!r}: this instance is not the leader")
        if conn is None:
            return epoch
        c = leases.c
        query = sa.select(c.holder, c.epoch).where(c.name == self.name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        if row is None or row.holder != self.holder or row.epoch != epoch:
            got = "none" if row is None else f"epoch {row.epoch} held by {row.holder}"
            raise FencedOut(
                f"lease {self.name!r}: write with epoch {epoch} refused; the lease is at {got}"
            )
        return epoch


def current(engine: sa.Engine, name: str) -> dict[str, Any] | None:
    """Who holds the lease now: holder, epoch, and seconds until it expires (by the database's
    clock; negative when it has run out and the next instance may take it); None if never."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
        if row is None:
            return None
        now = db_now(conn)
    return {
        "holder": row.holder,
        "epoch": int(row.epoch),
        "expires_in_s": round(float(row.expires_at) - now, 3),
    }


def history(engine: sa.Engine, name: str) -> list[dict[str, Any]]:
    """Every epoch of a lease, oldest first: holder, acquired_at, valid_until, ended."""
    h = lease_history.c
    with engine.connect() as conn:
        rows = (
            conn.execute(sa.select(lease_history).where(h.name == name).order_by(h.epoch))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
