"""One brain, for real: several `driftd run` processes on one consumer group and one PostgreSQL
decide as one (see DESIGN.md, "One brain"). The harness is ``tests/integration/cluster.py``.

- Three instances ingest a drifting stream on six partitions while the leader is SIGKILLed again
  and again: one leader at a time (the lease history), failover within the lease, counts exact,
  and the alarms are those of one in-process pipeline over the same events (the decisions do
  not depend on how the events were partitioned, nor on who led when).
- A leader cut off from PostgreSQL is fenced: in process (leases on the real database, one
  behind a proxy that is cut) and with two processes: nothing it writes lands after the next
  epoch began, and it survives the cut as a follower.
- A partition without events, restored by another instance, does not stop the leader.
- A real Prometheus scraping three instances sums their partition series to the stream and
  sees one leader.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from driftd.config import LeaderSettings, load_settings
from driftd.daemon.brain import Brain
from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.daemon.lease import FencedOut, Lease, set_session_timeouts
from driftd.daemon.replay import replay_files
from driftd.db import fence_writes, leader_state, make_engine, write_transaction
from driftd.sim.synth import Stream, StreamSpec, generate
from tests.integration.cluster import (
    Cluster,
    CutProxy,
    PacedPublisher,
    alarm_key,
    holder_pid,
    scrape,
)
from tests.integration.conftest import REPO, free_port, unavailable
from tests.integration.streams import kafka_config, kafka_truth, publish, status

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.postgres]

PARTITIONS = 6
INSTANCES = 3
KILLS = 5
LEASE_S, RENEW_S, IDLE_S = 4.0, 1.0, 20.0
LEADER = f"""
[leader]
lease_s = {LEASE_S}
renew_s = {RENEW_S}
idle_s = {IDLE_S}
merge_every_s = 0.5
"""
INGEST_S = 40.0  # the stream is published over this long (at least): the kills land in it
# A loaded 2-core CI machine: a failover may take this much longer than the lease.
FAILOVER_SLACK_S = 15.0
# Two versions, drift halfway (both detectors of the generated config fire: HDDM_A on the error,
# CUSUM on feature f0).
SPEC = StreamSpec(events=100_000, seed=41, versions=("1", "2"))


def cluster_config(
    spec: StreamSpec, tmp: Path, bootstrap: str, topics: tuple[str, str], name: str, url: str
) -> Path:
    """The stream's driftd.toml on Kafka and PostgreSQL, with a short lease."""
    cfg = kafka_config(spec, tmp, bootstrap, topics, name, url)
    text = cfg.read_text().replace("checkpoint_every_s = 0.5", "checkpoint_every_s = 1")
    cfg.write_text(text + LEADER)
    return cfg


def leader_brain(url: str, cfg: Path) -> tuple[Brain, float] | None:
    """The leader state saved last (a Brain) and when it was saved, or None."""
    settings = load_settings(cfg)
    store = SqlCheckpointStore(make_engine(url))
    try:
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.select(leader_state).where(leader_state.c.pipeline == settings.pipeline.name)
            ).first()
    finally:
        store.close()
    if row is None:
        return None
    brain = Brain(settings.models, settings.leader)
    brain.load_blob(bytes(row.data))
    return brain, float(row.updated_at)


def final_clock_at_least(stream: Stream, partitions: int, leader: LeaderSettings) -> float:
    """The event clock the leader reaches at least once every partition is consumed: the least
    partition watermark (the slower of its two streams, less the leader's lateness), by
    buckets."""
    from kafka.partitioner.default import murmur2

    spec, a = stream.spec, stream.arrays
    ids = [f"p-{spec.seed}-{i}" for i in range(spec.events)]
    part = np.array([(murmur2(i.encode()) & 0x7FFFFFFF) % partitions for i in ids])
    ts, label_ts = a["ts"], a["ts"] + a["delay"]
    marks = []
    for p in range(partitions):
        sel = part == p
        wp = float(ts[sel].max())
        lab = sel & a["has_label"]
        wl = float(label_ts[lab].max())
        marks.append(max(min(wp, wl), max(wp, wl) - spec.max_stream_skew_s) - leader.lateness_s)
    return math.floor(min(marks) / leader.bucket_s) * leader.bucket_s


def test_three_instances_decide_as_one_through_leader_kills(
    kafka_broker: str,
    topics: Callable[[int], tuple[str, str]],
    pg_url: str,
    tmp_path: Path,
    unique_name: str,
) -> None:
    t_start = time.monotonic()
    stream = generate(SPEC)
    names = topics(PARTITIONS)
    cfg = cluster_config(SPEC, tmp_path, kafka_broker, names, unique_name, pg_url)
    settings = load_settings(cfg)

    # The reference: the same events through one in-process pipeline, one partition.
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(stream.lines) + b"\n")
    reference = replay_files(settings, [events], dlq=tmp_path / "replay.dlq.jsonl", progress=False)
    assert reference["alarm_totals"]["total"] == len(reference["alarms"]), "alarms were dropped"
    assert reference["alarm_totals"]["by_kind"].get("drift", 0) >= 2, reference["alarm_totals"]

    # A live stream: published over INGEST_S (longer on a slow machine), ingested meanwhile.
    publisher = PacedPublisher(stream, kafka_broker, names, INGEST_S)
    publisher.start()
    cluster = Cluster(cfg, pg_url, unique_name, tmp_path / "logs")
    rng = random.Random(2026)
    failovers: list[float] = []
    at_kill: list[tuple[int, bool]] = []  # events consumed, and whether still publishing
    try:
        head = len(stream.lines) // 10
        cluster.wait("the head of the stream published", lambda: publisher.total >= head, 120)
        for _ in range(INSTANCES):
            cluster.start()
        t_ingest = time.monotonic()
        cluster.wait_leader(180)

        def beyond(e: int) -> Callable[[], bool]:
            return lambda: cluster.epoch() > e

        cluster.wait("events consumed", lambda: cluster.progress() > 0, 180)
        for _ in range(KILLS):
            # A random moment of the term, anywhere in a checkpoint interval, a merge or a save.
            time.sleep(rng.uniform(0.1, 1.5))
            lead, epoch = cluster.wait_leader(60)
            at_kill.append((cluster.progress(), not publisher.done.is_set()))
            t_kill = cluster.kill(lead)
            cluster.start()  # a replacement, in its place
            cluster.wait(
                f"an epoch after {epoch} in the lease history",
                beyond(epoch),
                LEASE_S + RENEW_S + FAILOVER_SLACK_S + 30,
                every=0.05,
            )
            failovers.append(time.monotonic() - t_kill)
            cluster.wait_leader(60, min_epoch=epoch + 1)

        cluster.wait("the stream published", publisher.done.is_set, 600)
        assert publisher.error is None, publisher.error
        total = publisher.total
        cluster.wait("every event consumed", lambda: cluster.progress() >= total, 300, every=0.5)
        t_consumed = time.monotonic()

        # Every partition consumed: once all are idle for idle_s nothing more is coming, and
        # the leader emits everything it holds (the tail of the stream is judged too).
        def settled() -> Brain | None:
            got = leader_brain(pg_url, cfg)
            if got is None:
                return None
            brain, saved_at = got
            parts = brain.partitions
            if len(parts) < PARTITIONS:
                return None
            quiet = saved_at - max(v.active_at for v in parts.values())
            return brain if quiet > IDLE_S + 2 else None

        brain = cluster.wait(
            "the leader to merge every partition to its end", settled, 120, every=1
        )
        rcs = cluster.stop_all()
        t_stopped = time.monotonic()
    finally:
        cluster.close()
        publisher.join(60)
    print(
        f"failover times (s): {[round(f, 2) for f in failovers]}; consumed at kills: "
        f"{[n for n, _ in at_kill]} of {total}; ingest {t_consumed - t_ingest:.1f}s, settle "
        f"{t_stopped - t_consumed:.1f}s, total {t_stopped - t_start:.1f}s"
    )
    assert all(rc == 0 for rc in rcs.values()), f"{rcs}\n{cluster.tails()}"
    assert all(publishing for _, publishing in at_kill), f"a kill after the ingest: {at_kill}"
    assert max(failovers) <= LEASE_S + RENEW_S + FAILOVER_SLACK_S, failovers

    # One leader at a time: consecutive epochs, each acquired after the previous one's end.
    history = cluster.history()
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1)), history
    assert len(history) >= KILLS + 1
    for prev, nxt in itertools.pairwise(history):
        assert nxt["acquired_at"] >= prev["valid_until"], (prev, nxt)
        assert prev["ended"] in ("expired", "released"), prev
    assert history[-1]["ended"] == "released", history[-1]
    killed = {m.pid for m in cluster.members if m.killed}
    assert len(killed) == KILLS
    assert killed <= {holder_pid(h["holder"]) for h in history}

    # Counts: exact, as one process would have them.
    truth = kafka_truth(stream, PARTITIONS)
    final = status(cfg)
    assert final["consumed"] == total
    assert final["models"] == truth["models"]
    assert final["dead_lettered"] == truth["dead_lettered"]

    # Decisions: the leader's merged stream is the single pipeline's, to its end.
    clock = brain.clock()
    assert clock >= final_clock_at_least(stream, PARTITIONS, settings.leader), clock
    assert brain.late_values == 0, f"{brain.late_values} values came after their bucket"
    expected = {alarm_key(a) for a in reference["alarms"]}
    assert all(k[5] < clock for k in expected), f"the event clock {clock} stopped short"
    assert any(k[4] == "drift" for k in expected), "no drift alarm before the event clock"
    logged = cluster.drift_alarms()
    logged_keys = {alarm_key(a) for a in logged}
    kept = {alarm_key(a) for a in final["alarms"]}
    missing, extra = expected - logged_keys, logged_keys - expected
    assert not missing and not extra, f"missing {sorted(missing)}\nextra {sorted(extra)}"
    assert kept == expected
    state_totals = Counter({k: n for k, n in brain.alarms().totals.items()})
    assert state_totals == Counter(k[:5] for k in expected), state_totals
    # Each alarm's statistic is the single pipeline's (the same values in the same order).
    stat = {alarm_key(a): a["statistic"] for a in reference["alarms"]}
    for a in logged:
        assert a["statistic"] == pytest.approx(stat[alarm_key(a)], rel=1e-9), a
    repeats = len(logged) - len(logged_keys)
    print(
        f"{len(expected)} alarms ({sum(k[4] == 'drift' for k in expected)} drifts) before the "
        f"event clock {clock:.0f}, as in one process; {repeats} repeated by a new leader; "
        f"{len(history)} epochs"
    )


# -- fencing ---------------------------------------------------------------------------------
class SteerableClock:
    """The monotonic clock, until frozen (a process whose clock stalls, or that is paused while
    it believes it still leads); ``thaw`` lets it run again, with the time it missed."""

    def __init__(self) -> None:
        self.frozen: float | None = None

    def __call__(self) -> float:
        return time.monotonic() if self.frozen is None else self.frozen

    def freeze(self) -> None:
        self.frozen = time.monotonic()

    def thaw(self) -> None:
        self.frozen = None


def pg_host_port(url: str) -> tuple[str, int]:
    u = sa.engine.make_url(url)
    return u.host or "127.0.0.1", u.port or 5432


def via(url: str, proxy: CutProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    u = sa.engine.make_url(url).set(host="127.0.0.1", port=proxy.port)
    return u.render_as_string(hide_password=False)


def lease_locks(engine: sa.Engine) -> int:
    """Locks other sessions hold on the lease table (a transaction that fenced a write)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid "
                    "WHERE c.relname = 'driftd_leases' AND l.granted AND l.pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def _until(what: str, cond: Callable[[], object], timeout: float, every: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def test_a_leader_cut_off_from_postgres_is_fenced_in_process(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Leases on a real PostgreSQL, one of them behind a proxy that is cut:

    1. cut off, the leader steps down (its own clock) ``guard_s`` before the other can take over;
    2. a leader that still believes it leads (its clock stalled) is refused by the fence after
       the takeover: its writes and its state save land nothing;
    3. a fenced transaction left open by a cut (held connection) holds the takeover back only
       until PostgreSQL ends the idle session; it commits nothing.
    """
    caplog.set_level("INFO", logger="driftd.leader")
    direct = make_engine(pg_url)
    store_b = SqlCheckpointStore.open(direct)  # the schema on the fresh database
    probe = sa.Table("fence_probe", sa.MetaData(), sa.Column("x", sa.Integer))
    probe.create(direct)
    proxy = CutProxy(*pg_host_port(pg_url))
    cut_off = make_engine(via(pg_url, proxy))
    set_session_timeouts(cut_off, 1000)  # as the daemon does, with lease_s / 3
    store_a = SqlCheckpointStore(cut_off)
    name = "fenced"

    def lease(engine: sa.Engine, holder: str, clock: Callable[[], float] = time.monotonic) -> Lease:
        return Lease(engine, name, LEASE_S, RENEW_S, holder=holder, clock=clock)

    def probes() -> list[int]:
        with direct.connect() as conn:
            return sorted(conn.execute(sa.select(probe.c.x)).scalars())

    b = lease(direct, "b")
    try:
        # 1. The leader behind the proxy is cut off: it steps down before b can take over.
        a = lease(cut_off, "a")
        assert a.renew() and a.epoch == 1
        store_a.save_leader(name, b"a:1", {}, a.fence)
        proxy.cut("refuse")
        t_down = t_up = None
        end = time.monotonic() + LEASE_S + 30
        while t_up is None:
            assert time.monotonic() < end, "b never took the lease over"
            a.tick()
            if t_down is None and not a.held:
                t_down = time.monotonic()
            t0 = time.monotonic()
            if b.tick():
                t_up = t0  # b's successful attempt began here, or later at the database
            time.sleep(0.02)
        assert b.epoch == 2 and t_down is not None
        assert t_up - t_down >= a.guard_s / 2, (t_up - t_down, a.guard_s)
        stepped = [vars(r) for r in caplog.records if r.getMessage() == "stepped down"]
        assert [r["epoch"] for r in stepped] == [1], stepped
        proxy.restore()
        assert not a.tick() and a.epoch is None
        with pytest.raises(FencedOut):
            store_a.save_leader(name, b"a:late", {}, a.fence)

        # 2. A leader whose clock stalled believes it leads after the takeover: the database
        # refuses its writes (the lease row carries the new epoch).
        b.release()
        stalled = SteerableClock()
        a2 = lease(cut_off, "a2", stalled)
        assert a2.renew() and a2.epoch == 3
        stalled.freeze()
        proxy.cut("refuse")
        _until("b to take the lease over from a2", b.tick, LEASE_S + 30)
        assert b.epoch == 4
        proxy.restore()
        assert a2.held  # its clock says so: only the fence can stop it
        fence_writes(cut_off, a2.fence)
        with pytest.raises(FencedOut, match="epoch 3 refused"), write_transaction(cut_off) as c:
            c.execute(probe.insert().values(x=3))
        with pytest.raises(FencedOut, match="epoch 3 refused"):
            store_a.save_leader(name, b"a2:stale", {}, a2.fence)
        store_b.save_leader(name, b"b:4", {}, b.fence)
        assert probes() == [] and store_b.load_leader(name) == b"b:4"
        stalled.thaw()
        assert not a2.held
        fence_writes(cut_off, None)

        # 3. A fenced transaction open when the link is cut (held, not closed): the row lock
        # it holds keeps b waiting only until PostgreSQL ends the idle session; nothing lands.
        b.release()
        stalled3 = SteerableClock()
        a3 = lease(cut_off, "a3", stalled3)
        assert a3.renew() and a3.epoch == 5
        stalled3.freeze()
        fence_writes(cut_off, a3.fence)
        errors: list[BaseException] = []
        opened = threading.Event()

        def write_across_the_cut() -> None:
            try:
                with write_transaction(cut_off) as c:  # the fence share-locks the lease row
                    c.execute(probe.insert().values(x=5))
                    opened.set()
                    proxy.cut("hold")
                    c.execute(probe.insert().values(x=6))  # hangs until restored
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=write_across_the_cut, daemon=True)
        writer.start()
        assert opened.wait(30)
        t_cut = time.monotonic()
        _until("PostgreSQL to end a3's idle transaction (its lock on the lease row)",
               lambda: not lease_locks(direct), 30)  # fmt: skip
        ended = time.monotonic() - t_cut
        _until("b to take the lease over from a3", b.tick, LEASE_S + 30)
        waited = time.monotonic() - t_cut
        assert b.epoch == 6
        assert writer.is_alive(), "a3's transaction ended before the link came back"
        proxy.restore()
        writer.join(30)
        assert not writer.is_alive() and errors, "a3's transaction across the cut committed"
        assert isinstance(errors[0], sa.exc.DBAPIError | FencedOut), repr(errors[0])
        assert probes() == []
        print(
            f"fenced: a stepped down {t_up - t_down:.2f}s before b took over; a3's open "
            f"transaction ended by PostgreSQL {ended:.1f}s after the cut, b led {waited:.1f}s after"
        )
    finally:
        proxy.close()
        fence_writes(cut_off, None)
        cut_off.dispose()
        b.release()
        store_b.close()


AUDIT = """
CREATE TABLE leader_state_audit (epoch BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE FUNCTION leader_state_audit() RETURNS trigger AS $$
BEGIN
  INSERT INTO leader_state_audit VALUES (NEW.epoch, EXTRACT(EPOCH FROM clock_timestamp()));
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER leader_state_audit AFTER INSERT OR UPDATE ON driftd_leader_state
  FOR EACH ROW EXECUTE FUNCTION leader_state_audit();
"""


def leader_state_writes(engine: sa.Engine) -> list[tuple[int, float]]:
    """Every committed write of the leader state: (epoch, database time of the write)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT epoch, at FROM leader_state_audit ORDER BY at"))
        return [(int(e), float(t)) for e, t in rows]


@pytest.mark.parametrize("mode", ["refuse", "hold"])
def test_a_leader_cut_off_from_postgres_is_fenced(
    kafka_broker: str,
    topics: Callable[[int], tuple[str, str]],
    pg_url: str,
    tmp_path: Path,
    unique_name: str,
    mode: str,
) -> None:
    """Two `driftd run`: the leader reaches PostgreSQL through a proxy, the other directly. The
    proxy is cut ("refuse": connections closed, none accepted; "hold": nothing forwarded, calls
    hang); the other takes the lease over; the link comes back. No leader state written with
    epoch 1 lands after epoch 2 began (a trigger records every committed write)."""
    spec = StreamSpec(events=300, seed=3)
    stream = generate(spec)
    names = topics(1)
    total = sum(publish(stream, kafka_broker, names).values())
    cfg = cluster_config(spec, tmp_path, kafka_broker, names, unique_name, pg_url)
    subprocess.run(
        [sys.executable, "-m", "driftd.cli", "db", "upgrade", "--config", str(cfg)],
        check=True, capture_output=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    direct = make_engine(pg_url)
    with direct.begin() as conn:
        conn.exec_driver_sql(AUDIT)
    proxy = CutProxy(*pg_host_port(pg_url))
    cluster = Cluster(cfg, pg_url, unique_name, tmp_path / "logs")
    port = free_port()
    try:
        # The proxied one checkpoints only when its partition is revoked (a checkpoint that
        # fails ends the loop by design: not what this test is about); it leads, merges and
        # saves the leader state with every merge.
        cut_off = cluster.start(
            env={
                "DRIFTD_CHECKPOINT__URL": via(pg_url, proxy),
                "DRIFTD_PIPELINE__CHECKPOINT_EVERY_S": "3600",
                "DRIFTD_PIPELINE__CHECKPOINT_EVERY_EVENTS": "1000000000",
                "DRIFTD_METRICS__ENABLED": "true",
                "DRIFTD_METRICS__PORT": str(port),
            }
        )
        lead, epoch = cluster.wait_leader(120)
        assert (lead, epoch) == (cut_off, 1)
        # Every event consumed first: whoever holds the partition next restores it with events.
        cluster.wait(
            "the first instance to consume the stream",
            lambda: scrape(port).get("driftd_events_consumed_total") == total,
            120,
        )
        assigned = len(cut_off.records("partitions assigned"))
        other = cluster.start()
        cluster.wait(
            "both instances in one generation of the consumer group",
            lambda: (
                other.records("partitions assigned")
                and len(cut_off.records("partitions assigned")) > assigned
            ),
            120,
        )
        cluster.wait("a leader state saved", lambda: leader_state_writes(direct), 60)
        t_cut = time.monotonic()
        proxy.cut(mode)
        # From here the cut-off instance may exit (checked at the end): the fencing is checked
        # either way.
        lead, epoch = cluster.wait_leader(
            LEASE_S + RENEW_S + FAILOVER_SLACK_S + 30, min_epoch=2, alive=False
        )
        failover = time.monotonic() - t_cut
        assert (lead, epoch) == (other, 2)
        cluster.wait(
            "epoch 2 to save the leader state",
            lambda: any(e == 2 for e, _ in leader_state_writes(direct)),
            60,
            alive=False,
        )
        proxy.restore()
        t_restored = time.monotonic()

        def reacted() -> bool:
            if not cut_off.alive:
                return True
            said = {r["msg"] for r in cut_off.records()}
            return bool(said & {"stepped down", "leader fenced out", "no longer leading"})

        cluster.wait("the cut-off leader to step down", reacted, 60, alive=False)
        n_writes = len(leader_state_writes(direct))
        cluster.wait(
            "epoch 2 to go on saving",
            lambda: len(leader_state_writes(direct)) >= n_writes + 3,
            60,
            alive=False,
        )
        assert cluster.leader() == (other, 2)
        with direct.connect() as conn:
            final_epoch = conn.execute(sa.select(leader_state.c.epoch)).scalar_one()
        # Stop the cut-off one first: when the leader releases, nobody else takes over.
        rc_cut_off = cluster.stop(cut_off)
        rc_other = cluster.stop(other)
    finally:
        cluster.close()
        proxy.close()
    history = cluster.history()
    writes = leader_state_writes(direct)
    direct.dispose()
    fate = "exited " + str(rc_cut_off) if cut_off.killed or rc_cut_off else "stepped down"
    print(
        f"cut ({mode}): epoch 2 led {failover:.1f}s after the cut; the cut-off leader "
        f"{fate}; {len(writes)} leader state writes; {time.monotonic() - t_restored:.1f}s "
        f"after the restore"
    )
    assert final_epoch == 2
    assert [(h["epoch"], holder_pid(h["holder"])) for h in history[:2]] == [
        (1, cut_off.pid),
        (2, other.pid),
    ]
    acquired = history[1]["acquired_at"]
    late = [(e, t) for e, t in writes if e == 1 and t >= acquired]
    assert not late, f"epoch 1 wrote after epoch 2 began at {acquired}: {late}"
    assert all(e == 2 for e, t in writes if t >= acquired), writes
    assert rc_other == 0, cluster.tails()
    # The cut-off instance survives the cut (its lease renewals fail and are retried; it
    # steps down): the database being away for a few seconds must not stop the daemon.
    assert cut_off.proc.returncode == 0, (
        f"the cut-off instance exited with {cut_off.proc.returncode}\n{cluster.tails()}"
    )


def test_a_partition_without_events_restored_elsewhere_does_not_stop_the_leader(
    kafka_broker: str,
    topics: Callable[[int], tuple[str, str]],
    pg_url: str,
    tmp_path: Path,
    unique_name: str,
) -> None:
    """A partition that has had no event yet (a quiet key range, a new topic) is checkpointed,
    then restored by the next instance (a restart, a rebalance): the leader merges its reports
    (no event time: the watermark of nothing) and goes on leading and saving its state."""
    names = topics(1)  # and no events
    cfg = cluster_config(StreamSpec(events=10), tmp_path, kafka_broker, names, unique_name, pg_url)
    cluster = Cluster(cfg, pg_url, unique_name, tmp_path / "logs")
    engine = make_engine(pg_url)

    def saves_by(epoch: int) -> float | None:
        """When the leader state was last saved with ``epoch``."""
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.select(leader_state.c.epoch, leader_state.c.updated_at)
                ).first()
        except sa.exc.DBAPIError:
            return None
        return float(row.updated_at) if row is not None and row.epoch == epoch else None

    try:
        first = cluster.start()
        cluster.wait_leader(120)
        cluster.wait("a checkpoint of partition 0", lambda: checkpoint_seq(cluster) >= 2, 120)
        assert cluster.stop(first) == 0, cluster.tails()
        second = cluster.start()
        cluster.wait("partition 0 restored", lambda: second.records("partition restored"), 120)
        lead, epoch = cluster.wait_leader(60, min_epoch=2)
        assert lead is second
        since = time.time()
        # Leading for a while: merging the restored partition's reports and saving.
        cluster.wait(
            "the new leader to go on saving its state",
            lambda: (saves_by(epoch) or 0) > since + 3 * RENEW_S,
            60,
        )
        assert cluster.stop(second) == 0, cluster.tails()
    finally:
        cluster.close()
        engine.dispose()


def checkpoint_seq(cluster: Cluster) -> int:
    """The highest checkpoint sequence saved (0: none yet)."""
    try:
        infos = SqlCheckpointStore(cluster.engine).info(cluster.name)
    except sa.exc.DBAPIError:
        return 0  # no tables yet
    return max((cp["seq"] for cp in infos), default=0)


def _prom_value(port: int, query: str) -> float | None:
    """An instant query's single value through Prometheus's HTTP API (None: no answer yet)."""
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(query)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
    except OSError:
        return None
    result = body["data"]["result"] if body.get("status") == "success" else []
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_metrics_of_three_instances_sum_to_one(
    kafka_broker: str,
    topics: Callable[[int], tuple[str, str]],
    pg_url: str,
    tmp_path: Path,
    unique_name: str,
) -> None:
    """A real Prometheus scrapes three instances: the partition series sum to the stream over
    instances, and exactly one instance says it leads."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        unavailable("the prometheus binary is not installed (apt-get install prometheus)")
        return
    spec = StreamSpec(events=20_000, seed=8)
    stream = generate(spec)
    names = topics(PARTITIONS)
    total = sum(publish(stream, kafka_broker, names).values())
    cfg = cluster_config(spec, tmp_path, kafka_broker, names, unique_name, pg_url)
    cluster = Cluster(cfg, pg_url, unique_name, tmp_path / "logs")
    ports = [free_port() for _ in range(INSTANCES)]
    prom_port = free_port()
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: driftd\n"
        f"    static_configs:\n      - targets: [{targets}]\n"
    )
    prom = None
    try:
        for p in ports:
            cluster.start(env={"DRIFTD_METRICS__ENABLED": "true", "DRIFTD_METRICS__PORT": str(p)})
        prom = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=(tmp_path / "prometheus.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        cluster.wait_leader(120)
        cluster.wait("every event consumed", lambda: cluster.progress() >= total, 180, every=0.5)

        def direct() -> tuple[float, float]:
            scraped = [scrape(p) for p in ports]
            return (
                sum(s.get("driftd_events_consumed_total", 0.0) for s in scraped),
                sum(s.get("driftd_leader", 0.0) for s in scraped),
            )

        cluster.wait("the instances' own counts to add up", lambda: direct() == (total, 1), 60)
        cluster.wait(
            "Prometheus to scrape the sum of the stream",
            lambda: _prom_value(prom_port, "sum(driftd_events_consumed_total)") == total,
            60,
            every=0.5,
        )
        cluster.wait(
            "Prometheus to see exactly one leader",
            lambda: _prom_value(prom_port, "sum(driftd_leader)") == 1.0,
            30,
            every=0.5,
        )
        assert _prom_value(prom_port, "count(driftd_leader == 1)") == 1.0
        rcs = cluster.stop_all()
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        cluster.close()
    assert all(rc == 0 for rc in rcs.values()), f"{rcs}\n{cluster.tails()}"
