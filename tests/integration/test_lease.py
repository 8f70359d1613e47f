"""The leader lease on SQLite and on a real PostgreSQL: one holder at a time, takeover after
expiry with a new epoch, fenced writes refused for a stale epoch, release, history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.daemon.lease import FencedOut, Lease, history, set_session_timeouts
from driftd.db import fence_writes, make_engine, require_current, write_transaction
from tests.databases import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    with fresh_database(request.param, tmp_path) as url:
        eng = make_engine(url)
        require_current(eng)
        yield eng
        eng.dispose()


class Clock:
    """A monotonic clock the test moves by hand (the lease's local deadline)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _wait(cond: object, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_one_holder_at_a_time_and_a_takeover_only_after_expiry(engine: sa.Engine) -> None:
    a = Lease(engine, "p", lease_s=0.6, renew_s=0.2, holder="a")
    b = Lease(engine, "p", lease_s=0.6, renew_s=0.2, holder="b")
    assert a.renew() and a.epoch == 1
    assert not b.renew() and b.epoch is None
    assert a.renew() and a.epoch == 1  # a renewal keeps the epoch
    # a stops renewing (killed): b gets it once it has expired, with the next epoch
    _wait(lambda: b.renew())
    assert b.epoch == 2
    assert not a.renew() and a.epoch is None  # a learns it lost the lease
    h = history(engine, "p")
    assert [(r["epoch"], r["holder"], r["ended"]) for r in h] == [
        (1, "a", "expired"),
        (2, "b", None),
    ]
    assert h[1]["acquired_at"] >= h[0]["valid_until"]  # never two leaders at once


def test_release_hands_the_lease_over_at_once(engine: sa.Engine) -> None:
    a = Lease(engine, "p", lease_s=30.0, renew_s=5.0, holder="a")
    b = Lease(engine, "p", lease_s=30.0, renew_s=5.0, holder="b")
    assert a.renew()
    assert not b.renew()
    a.release()
    assert b.renew() and b.epoch == 2
    assert history(engine, "p")[0]["ended"] == "released"


def test_a_holder_steps_down_before_its_lease_can_be_taken(engine: sa.Engine) -> None:
    clock = Clock()
    a = Lease(engine, "p", lease_s=10.0, renew_s=2.0, holder="a", clock=clock)
    assert a.renew() and a.held
    clock.t += 10.0 - a.guard_s - 0.01
    assert a.held
    clock.t += 0.02  # its local deadline: guard_s before anyone else may take over
    assert not a.held
    with pytest.raises(FencedOut):
        a.fence(None)


def test_a_write_fenced_by_a_stale_epoch_is_refused_and_lands_nothing(engine: sa.Engine) -> None:
    clock = Clock()
    a = Lease(engine, "p", lease_s=0.5, renew_s=0.1, holder="a", clock=clock)
    b = Lease(engine, "p", lease_s=0.5, renew_s=0.1, holder="b")
    assert a.renew()
    writes = make_engine(engine.url.render_as_string(hide_password=False))
    fence_writes(writes, a.fence)
    table = sa.Table("t_fenced", sa.MetaData(), sa.Column("x", sa.Integer))
    table.create(writes)
    with write_transaction(writes) as conn:
        conn.execute(table.insert().values(x=1))  # a holds the lease: lands
    _wait(lambda: b.renew())  # a was cut off; its lease expired; b leads with epoch 2
    # a's own clock has not run out yet (a paused process): only the fence can stop it
    assert a.held
    with pytest.raises(FencedOut, match="epoch 1 refused"), write_transaction(writes) as conn:
        conn.execute(table.insert().values(x=2))
    with writes.connect() as conn:
        assert conn.execute(sa.select(table.c.x)).scalars().all() == [1]
    writes.dispose()


def test_a_deposed_leader_saves_no_state(engine: sa.Engine) -> None:
    store = SqlCheckpointStore(engine)
    a = Lease(engine, "p", lease_s=0.5, renew_s=0.1, holder="a")
    b = Lease(engine, "p", lease_s=0.5, renew_s=0.1, holder="b")
    assert a.renew()
    store.save_leader("p", b"from a", {}, a.fence)
    _wait(lambda: b.renew())
    a._valid_until = float("inf")  # a paused leader that still believes it leads
    with pytest.raises(FencedOut):
        store.save_leader("p", b"a again", {}, a.fence)
    store.save_leader("p", b"from b", {}, b.fence)
    assert store.load_leader("p") == b"from b"


def test_a_follower_takes_over_when_the_lease_runs_out_not_a_renewal_later(
    engine: sa.Engine,
) -> None:
    clock = Clock()
    a = Lease(engine, "p", lease_s=3.0, renew_s=1.0, holder="a")
    # b renews rarely: without the retry at expiry it would look again only renew_s later.
    b = Lease(engine, "p", lease_s=3.0, renew_s=60.0, holder="b", clock=clock)
    assert a.renew()
    assert not b.tick()
    wait = b._next_try - clock.t
    assert 0.05 <= wait <= 3.0 + 0.05, wait  # when a's lease runs out, by the database's clock
    _wait(lambda: _expired(engine))  # a died (it renews no more): its lease runs out
    clock.t += wait
    assert b.tick() and b.epoch == 2


def _expired(engine: sa.Engine) -> bool:
    from driftd.daemon.lease import current

    row = current(engine, "p")
    return row is not None and row["expires_in_s"] <= 0


def test_every_session_ends_idle_transactions_even_those_pooled_before(tmp_path: Path) -> None:
    """A connection pooled before the timeout was set (the schema check at start-up) must not
    be reused without it: a partitioned leader's open transaction would then hold the lease
    row for ever and no follower could take over (seen on CI with the link held)."""
    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        require_current(engine)  # pools a connection before the timeout is set
        set_session_timeouts(engine, 1234)
        held = [engine.connect() for _ in range(3)]  # the pooled one first, then fresh ones
        try:
            shown = [
                c.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() for c in held
            ]
        finally:
            for c in held:
                c.close()
            engine.dispose()
    assert shown == ["1234ms"] * 3, shown
