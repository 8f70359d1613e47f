"""Scale-out benchmark (issue 12): several driftd instances deciding as one brain.

Run ``python benchmarks/scaleout.py`` (``--quick`` for a smoke run). Four parts:

A. detection, in process: the same generated events through 1 partition (1 instance), 3 and
   6 partitions (3 instances), the partitions' reports merged by one ``Brain``; beside it, in
   the same pass, the old behaviour (every partition running its own detectors);
B. failover: processes holding a ``Lease`` on PostgreSQL, the holder killed -9 again and
   again; the time until another holds the next epoch;
C. ingest throughput of 1, 2 and 3 ``driftd run`` processes on a tansu broker (6 partitions)
   with PostgreSQL checkpoints, then kill -9 of the leading ``driftd run`` process;
D. the cost of the merge at the leader (``Brain.absorb`` + ``advance``) per 1M events, and
   the report bytes per event.

The machine is shared and small: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import sqlalchemy as sa

from driftd.config import (
    DetectorSettings,
    IngestSettings,
    JoinSettings,
    LeaderSettings,
    ModelSettings,
)
from driftd.contracts.events import Label, Prediction
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.abc import RawChunk, Report
from driftd.daemon.brain import Brain
from driftd.daemon.detector_monitor import DetectorMonitor
from driftd.daemon.pipeline import Pipeline
from driftd.sim import synth

try:
    from benchmarks import report
    from benchmarks.kafka_path import broker, publish
    from benchmarks.report import Row, fmt, print_rows
except ImportError:  # run as a script: python benchmarks/scaleout.py
    import report  # type: ignore[no-redef,import-not-found]
    from kafka_path import broker, publish  # type: ignore[no-redef,import-not-found]
    from report import Row, fmt, print_rows  # type: ignore[no-redef]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "scaleout.json"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MODEL = "m"
START_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RATE = 50.0  # predictions per second of event time (as synth)
NEVER = -math.inf
LEADER = LeaderSettings()  # bucket_s 10, lateness_s 5, idle_s 30: the defaults
JOIN = JoinSettings(allowed_lateness_s=30.0, max_stream_skew_s=3600.0)
BLOCK = 2_000  # lines per poll in the in-process runs
SETUPS = ((1, 1), (3, 3), (3, 6))  # (instances, partitions)

# Part A: two detectors on the error stream, two on a feature (all at their defaults but
# CUSUM's warm-up, as `driftd generate` configures it).
DETECTORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("HDDM_A", "error", {}),
    ("ADWIN", "error", {}),
    ("CUSUM", "feature:f0", {"warm_start": 500}),
    ("ADWIN", "feature:f0", {}),
)
# Part D: the typical configuration that `driftd generate` writes.
MERGE_DETECTORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("HDDM_A", "error", {}),
    ("CUSUM", "feature:f0", {"warm_start": 500}),
)


def model_settings(
    detectors: Sequence[tuple[str, str, dict[str, Any]]], max_label_delay_s: float = 60.0
) -> dict[str, ModelSettings]:
    return {
        MODEL: ModelSettings(
            task="binary",
            max_label_delay_s=max_label_delay_s,
            window_s=300,
            features={"f0": "numeric", "f1": "numeric"},
            detectors=[DetectorSettings(detector=d, stream=s, params=p) for d, s, p in detectors],
        )
    }


def det_key(detector: str, stream: str) -> str:
    return f"{detector} @ {stream}"


def progress(args: argparse.Namespace, msg: str) -> None:
    if args.verbose:
        print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- generated events --------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    """A binary classifier's predictions and labels; at ``drift_s`` (event seconds after the
    start) its error rate goes from ``err_before`` to ``err_after`` and feature f0's mean
    moves by ``shift_sd`` standard deviations; ``drift_s=None``: no change at all."""

    predictions: int
    seed: int
    drift_s: float | None = None
    err_before: float = 0.10
    err_after: float = 0.15
    shift_sd: float = 0.25
    label_rate: float = 0.9
    label_delay_mean_s: float = 20.0


@dataclass
class Events:
    lines: list[bytes]  # predictions and labels, in event-time order
    keys: np.ndarray[Any, Any]  # CRC-32 of each line's id: partition = key % P
    predictions: int
    labels: int
    drift_ts: float | None


def make_events(spec: EventSpec) -> Events:
    """The stream of ``spec`` as JSON lines (predictions at their time, labels at theirs)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.predictions
    ts = START_TS + np.cumsum(rng.exponential(1.0 / RATE, n))
    drift_ts = None if spec.drift_s is None else START_TS + spec.drift_s
    drifted = np.zeros(n, bool) if drift_ts is None else ts >= drift_ts
    f0 = np.round(rng.standard_normal(n) + spec.shift_sd * drifted, 6)
    f1 = np.round(rng.standard_normal(n), 6)
    pred = (rng.random(n) < 0.5).astype(np.int64)
    score = np.round(rng.random(n), 6)
    wrong = rng.random(n) < np.where(drifted, spec.err_after, spec.err_before)
    label = np.where(wrong, 1 - pred, pred)
    has = rng.random(n) < spec.label_rate
    label_ts = ts + rng.exponential(spec.label_delay_mean_s, n)
    latency = np.round(rng.lognormal(math.log(20), 0.5, n), 3)
    ids = [f"e{spec.seed}-{i}" for i in range(n)]
    key = np.fromiter((zlib.crc32(i.encode()) for i in ids), np.uint32, n)
    enc = msgspec.json.Encoder()
    lab = np.flatnonzero(has)
    when = np.concatenate([ts, label_ts[lab]])
    which = np.concatenate([np.arange(n), lab])
    is_label = np.concatenate([np.zeros(n, bool), np.ones(len(lab), bool)])
    order = np.lexsort((is_label, which, when))
    lines: list[bytes] = []
    tsl, f0l, f1l, pl, sl, ll, lbl, lts = (
        a.tolist() for a in (ts, f0, f1, pred, score, latency, label, label_ts)
    )
    for k in order.tolist():
        i = int(which[k])
        if is_label[k]:
            lines.append(enc.encode(Label(id=ids[i], model=MODEL, ts=lts[i], label=lbl[i])))
        else:
            lines.append(
                enc.encode(
                    Prediction(
                        id=ids[i],
                        model=MODEL,
                        version="1",
                        ts=tsl[i],
                        features={"f0": f0l[i], "f1": f1l[i]},
                        prediction=pl[i],
                        score=sl[i],
                        latency_ms=ll[i],
                    )
                )
            )
    return Events(lines, key[which[order]], n, len(lab), drift_ts)


# -- A. detection: one brain vs detectors per partition ----------------------------------


@dataclass
class Run:
    """One stream through one setup: the brain's alarms, the partitions' own alarms."""

    brain: list[DriftDetected]
    per_partition: list[DriftDetected]
    joined: int
    predictions: int
    late_values: int
    report_bytes: int = 0


class Instances:
    """``instances`` pipelines sharing ``partitions`` partitions (p on instance p % n), each
    checkpointing (saving a report per partition) on its own cadence, and one leader's brain
    merging the reports after every poll, as ``Checkpointer._snapshot`` and ``Leader.merge``
    do, without the database."""

    def __init__(
        self,
        models: dict[str, ModelSettings],
        instances: int,
        partitions: int,
        old: bool,
        detectors_in_brain: bool = True,
    ) -> None:
        def extra(name: str, schema: Any) -> list[DetectorMonitor]:
            return [DetectorMonitor(name, schema, schema.settings)]

        self.pipes = [
            Pipeline(models, IngestSettings(), JOIN, extra if old else None, leader=LEADER)
            for _ in range(instances)
        ]
        self.n, self.P = instances, partitions
        self.brain = Brain(models, LEADER) if detectors_in_brain else None
        self.seq = dict.fromkeys(range(partitions), 0)
        self.active: dict[int, tuple[int, float]] = {}
        self.old_alarms: list[DriftDetected] = []
        self.new_alarms: list[DriftDetected] = []
        self.report_bytes = 0
        self.encode_s = 0.0

    def owner(self, p: int) -> Pipeline:
        return self.pipes[p % self.n]

    def report(self, p: int, wall: float) -> Report:
        st = self.owner(p).partition(p)
        self.seq[p] += 1
        consumed, at = self.active.get(p, (0, NEVER))
        if st.consumed != consumed:
            consumed, at = st.consumed, wall
            self.active[p] = (consumed, at)
        t0 = time.perf_counter()
        data = st.report_data()
        self.encode_s += time.perf_counter() - t0
        st.clear_report()
        self.report_bytes += len(data)
        return Report(p, self.seq[p], st.watermark(LEADER.lateness_s), at, data)

    def poll(self, ev: Events, lo: int, hi: int) -> None:
        part = ev.keys[lo:hi] % self.P
        for p in range(self.P):
            idx = (np.flatnonzero(part == p) + lo).tolist()
            if idx:
                chunk = RawChunk(
                    p, "mixed", "bench", [ev.lines[i] for i in idx], idx, {"bench": idx[-1] + 1}
                )
                self.old_alarms += self.owner(p).process(chunk).alarms

    def checkpoint(self, b: int) -> list[Report]:
        """Instance i saves its partitions' reports every i + 1 polls (staggered)."""
        return [self.report(p, float(b)) for p in range(self.P) if (b + 1) % (p % self.n + 1) == 0]

    def final(self, b: int) -> list[Report]:
        return [self.report(p, float(b)) for p in range(self.P)]

    def merge(self, reports: list[Report], b: float, final: bool = False) -> None:
        brain = self.brain
        if brain is None:
            return
        brain.absorb(reports)
        mark = math.inf if final else brain.watermark(b, range(self.P), waited=False)
        self.new_alarms += brain.advance(mark)

    def counts(self) -> tuple[int, int]:
        joined = preds = 0
        for pipe in self.pipes:
            for st in pipe.partitions.values():
                c = st.models[MODEL].store.counts
                joined += c["joined"]
                preds += c["predictions"]
        return joined, preds


def run_setup(ev: Events, instances: int, partitions: int) -> Run:
    """The stream through one setup, brain and per-partition detectors in the same pass."""
    run = Instances(model_settings(DETECTORS), instances, partitions, old=True)
    b = 0
    for b, lo in enumerate(range(0, len(ev.lines), BLOCK)):
        run.poll(ev, lo, min(lo + BLOCK, len(ev.lines)))
        run.merge(run.checkpoint(b), b)
    run.merge(run.final(b + 1), b + 1, final=True)
    joined, preds = run.counts()
    assert run.brain is not None
    return Run(
        run.new_alarms,
        run.old_alarms,
        joined,
        preds,
        run.brain.late_values,
        run.report_bytes,
    )


def alarm_key(a: DriftDetected) -> tuple[Any, ...]:
    return (a.version, a.stream, a.detector, a.kind, a.ts, a.statistic, a.threshold)


@dataclass
class Cell:
    """One detector in one setup: false alarms on drift-free streams, delays on drift ones."""

    alarms: int = 0
    values: int = 0
    delays: list[float] = field(default_factory=list)

    def fa(self) -> float | None:
        return self.alarms / self.values * 1e5 if self.values else None

    def delay(self, q: float) -> float | None:
        if not self.delays:
            return None
        d = float(np.quantile(np.array(self.delays), q, method="lower"))
        return None if math.isinf(d) else d

    def missed(self) -> int:
        return sum(math.isinf(d) for d in self.delays)


def setup_name(mode: str, instances: int, partitions: int) -> str:
    if mode == "brain":
        return f"one brain, {instances} inst x {partitions} part"
    return f"per partition, {partitions} part (before)"


def detection(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    """Part A over the drift-free and the drift streams."""
    keys = [det_key(d, s) for d, s, _ in DETECTORS]
    cells: dict[tuple[str, int, int, str], Cell] = {}
    identical = compared = late = 0
    t0 = time.perf_counter()
    streams = [EventSpec(args.free_n, 1000 + s) for s in range(args.free_streams)] + [
        EventSpec(args.drift_n, 2000 + s, drift_s=args.drift_n / RATE / 2)
        for s in range(args.drift_streams)
    ]
    for k, spec in enumerate(streams):
        ev = make_events(spec)
        first: list[tuple[Any, ...]] | None = None
        for inst, parts in SETUPS:
            run = run_setup(ev, inst, parts)
            late += run.late_values
            got = [alarm_key(a) for a in run.brain]
            if first is None:
                first = got
            else:
                compared += 1
                identical += got == first
            for mode, alarms in (("brain", run.brain), ("old", run.per_partition)):
                for (det, stream, _), key in zip(DETECTORS, keys, strict=True):
                    cell = cells.setdefault((mode, inst, parts, key), Cell())
                    fired = sorted(
                        a.ts
                        for a in alarms
                        if a.kind == "drift" and a.detector == det and a.stream == stream
                    )
                    if ev.drift_ts is None:
                        cell.alarms += len(fired)
                        cell.values += run.joined if stream == "error" else run.predictions
                    else:
                        after = [t - ev.drift_ts for t in fired if t >= ev.drift_ts]
                        cell.delays.append(after[0] if after else math.inf)
        progress(args, f"A stream {k + 1}/{len(streams)} ({len(ev.lines):,} lines)")
    elapsed = time.perf_counter() - t0
    table = []
    for key in keys:
        for mode in ("brain", "old"):
            for inst, parts in SETUPS:
                c = cells[(mode, inst, parts, key)]
                table.append(
                    {
                        "detector": key,
                        "mode": mode,
                        "instances": inst if mode == "brain" else None,
                        "partitions": parts,
                        "setup": setup_name(mode, inst, parts),
                        "false_alarms": c.alarms,
                        "values": c.values,
                        "fa_per_100k": c.fa(),
                        "delay_median_s": c.delay(0.5),
                        "delay_p90_s": c.delay(0.9),
                        "missed": c.missed(),
                        "delays_s": c.delays,
                    }
                )
    print_detection(table, identical, compared, args)
    rows = detection_rows(cells, keys, identical, compared)
    info = {
        "table": table,
        "identical_streams": identical,
        "compared_streams": compared,
        "late_values": late,
        "seconds": round(elapsed, 1),
    }
    return rows, info


def print_detection(
    table: list[dict[str, Any]], identical: int, compared: int, args: argparse.Namespace
) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=(
            f"A. detection, the same events: {args.free_streams} drift-free streams x "
            f"{args.free_n:,} predictions (false alarms), {args.drift_streams} streams x "
            f"{args.drift_n:,} with a change at the middle (delay, event seconds); one brain's "
            f"alarms identical to 1 partition's in {identical}/{compared} runs"
        )
    )
    for col in (
        "detector",
        "setup",
        "FA/100k",
        "(alarms / values)",
        "delay median",
        "p90",
        "missed",
    ):
        t.add_column(col, justify="left" if col in ("detector", "setup") else "right")
    last = None
    for r in table:
        if last is not None and r["detector"] != last:
            t.add_section()
        last = r["detector"]
        t.add_row(
            r["detector"],
            r["setup"],
            fmt(r["fa_per_100k"]),
            f"({r['false_alarms']} / {r['values']:,})",
            fmt(r["delay_median_s"]) + " s" if r["delay_median_s"] is not None else "-",
            fmt(r["delay_p90_s"]) + " s" if r["delay_p90_s"] is not None else "-",
            f"{r['missed']}/{len(r['delays_s'])}",
        )
    Console(width=200).print(t)


def detection_rows(
    cells: dict[tuple[str, int, int, str], Cell], keys: list[str], identical: int, compared: int
) -> list[Row]:
    rows = [
        Row(
            "A1 one brain: alarms identical, 3 inst x 3 and 6 part vs 1 x 1",
            identical / compared if compared else None,
            "of runs",
            target={"op": ">=", "value": 1.0, "of": "value"},
            note=(
                f"{identical}/{compared}: detector, kind, version, stream, event time, "
                "statistic, threshold"
            ),
        )
    ]

    def total(mode: str, inst: int, parts: int) -> float | None:
        cs = [cells[(mode, inst, parts, k)] for k in keys]
        values = sum(c.values for c in cs)
        return sum(c.alarms for c in cs) / values * 1e5 if values else None

    base = total("brain", 1, 1)
    for mode, inst, parts in (("brain", 3, 6), ("old", 1, 1), ("old", 3, 3), ("old", 3, 6)):
        v = total(mode, inst, parts)
        rows.append(
            Row(
                f"A2 false alarms, all 4 detectors, {setup_name(mode, inst, parts)}",
                v,
                "/100k values",
                baseline=base,
                ratio=v / base if v is not None and base else None,
                note="baseline: one brain, 1 x 1",
            )
        )
    for k in keys:
        b, old = cells[("brain", 3, 6, k)], cells[("old", 3, 6, k)]
        one = cells[("brain", 1, 1, k)]
        bm, om = b.delay(0.5), old.delay(0.5)
        rows.append(
            Row(
                f"A3 median delay {k}, per partition x 6 (before)",
                om,
                "s",
                baseline=bm,
                ratio=om / bm if om is not None and bm else None,
                note=(
                    f"baseline: one brain 3 x 6 ({fmt(bm)} s; 1 x 1: {fmt(one.delay(0.5))} s); "
                    f"missed {old.missed()} vs {b.missed()}; FA/100k {fmt(old.fa())} vs "
                    f"{fmt(b.fa())}"
                ),
            )
        )
    return rows


# -- PostgreSQL and processes --------------------------------------------------------------


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards (the logic of
    tests/databases.py)."""
    name = f"driftd_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except BaseException:
        admin.dispose()
        raise
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def holder_pid(holder: str) -> int:
    """The pid in a lease holder id, ``<hostname>-<pid>-<8 hex>``."""
    return int(holder.rsplit("-", 2)[1])


def wait_for(what: str, fn: Callable[[], Any], timeout: float, every: float = 0.02) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(every)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def lease_row(engine: sa.Engine, name: str) -> Any:
    from driftd.db import leases

    with engine.connect() as conn:
        return conn.execute(sa.select(leases).where(leases.c.name == name)).first()


def history_row(engine: sa.Engine, name: str, epoch: int) -> Any:
    from driftd.db import lease_history

    h = lease_history.c
    with engine.connect() as conn:
        return conn.execute(
            sa.select(lease_history).where((h.name == name) & (h.epoch == epoch))
        ).first()


def overlaps(engine: sa.Engine, name: str) -> int:
    """Epochs acquired before the previous epoch's last renewal ran out (two leaders)."""
    from driftd.daemon.lease import history

    hs = history(engine, name)
    return sum(b["acquired_at"] < a["valid_until"] for a, b in itertools.pairwise(hs))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_leader(
    engine: sa.Engine,
    name: str,
    procs: dict[int, subprocess.Popen[bytes]],
    spawn: Callable[[], None],
    renew_s: float,
    timeout: float,
    rng: random.Random,
) -> dict[str, Any]:
    """Wait for a leader among ``procs``; after a random part of a renewal period kill -9 it,
    start a replacement, and time the takeover (the next epoch's acquired_at, by the
    database's clock on this host, less the kill's wall time)."""

    def held() -> Any:
        row = lease_row(engine, name)
        return row if row is not None and holder_pid(row.holder) in procs else None

    row = wait_for("a leader", held, timeout)
    time.sleep(rng.uniform(0.0, renew_s))
    row = wait_for("a leader", held, timeout)
    pid = holder_pid(row.holder)
    t_kill = time.time()
    os.kill(pid, signal.SIGKILL)
    procs.pop(pid).wait()
    row = lease_row(engine, name)  # its last renewal: nothing of it is in flight any more
    spawn()
    new = wait_for(
        f"epoch {row.epoch + 1}", lambda: history_row(engine, name, row.epoch + 1), timeout
    )
    return {
        "epoch": int(new.epoch),
        "failover_s": float(new.acquired_at) - t_kill,
        "lease_left_s": float(row.expires_at) - t_kill,
    }


def lease_child(url: str, name: str, lease_s: float, renew_s: float) -> None:
    """A process that only holds, or waits for, the lease: ``tick`` every 0.1 s, from a
    random moment within the first renewal period (processes started together would
    otherwise try at the same phase as the leader renews, and take over just as it expires)."""
    from driftd.daemon.lease import Lease
    from driftd.db import make_engine

    lease = Lease(make_engine(url), name, lease_s, renew_s)
    time.sleep(random.uniform(0.0, renew_s))
    while True:
        lease.tick()
        time.sleep(0.1)


# -- B. failover with lease processes ------------------------------------------------------


def failover_leases(
    url: str, lease_s: float, kills: int, holders: int, rng: random.Random, args: argparse.Namespace
) -> dict[str, Any]:
    from driftd.db import make_engine, require_current

    renew_s = lease_s / 3
    engine = make_engine(url)
    require_current(engine)
    name = f"bench-lease-{uuid.uuid4().hex[:8]}"
    procs: dict[int, subprocess.Popen[bytes]] = {}
    me = str(Path(__file__).resolve())

    def spawn() -> None:
        cmd = [sys.executable, me, "--lease-child", url, name, str(lease_s), str(renew_s)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs[p.pid] = p

    for _ in range(holders):
        spawn()
    got = []
    try:
        for k in range(kills):
            got.append(kill_leader(engine, name, procs, spawn, renew_s, 2 * lease_s + 60, rng))
            progress(args, f"B lease_s={lease_s:g} kill {k + 1}/{kills}: {got[-1]}")
        bad = overlaps(engine, name)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        engine.dispose()
    return {
        "lease_s": lease_s,
        "renew_s": renew_s,
        "holders": holders,
        "kills": got,
        "overlaps": bad,
    }


def failover_rows(res: dict[str, Any], label: str, what: str) -> list[Row]:
    f = np.array([k["failover_s"] for k in res["kills"]])
    left = np.array([k["lease_left_s"] for k in res["kills"]])
    lease_s, renew_s = res["lease_s"], res["renew_s"]
    target = {"op": "<=", "value": lease_s, "of": "value"}
    common = f"{len(f)} kills, lease_s {lease_s:g}, renew_s {renew_s:g}, {what}"
    return [
        Row(
            f"B1 failover median, {label}, lease_s={lease_s:g}",
            float(np.median(f)),
            "s",
            note=f"{common}; lease left at the kill: median {np.median(left):.1f} s",
        ),
        Row(
            f"B2 failover max, {label}, lease_s={lease_s:g}",
            float(f.max()),
            "s",
            target=target,
            note=(
                f"min {f.min():.1f} s; takeover after the lease ran out: median "
                f"{np.median(f - left):.2f} s, max {(f - left).max():.2f} s"
            ),
        ),
        Row(
            f"B3 overlapping epochs, {label}, lease_s={lease_s:g}",
            float(res["overlaps"]),
            "epochs",
            target={"op": "<=", "value": 0, "of": "value"},
            note="in driftd_lease_history: an epoch acquired before the previous one's last "
            "renewal ran out (two leaders at once)",
        ),
    ]


# -- C. ingest throughput with driftd run processes ----------------------------------------


def run_config(
    spec: synth.StreamSpec,
    tmp: Path,
    name: str,
    url: str,
    bootstrap: str,
    topics: tuple[str, str],
    lease_s: float,
) -> Path:
    """`driftd generate`'s driftd.toml for the stream, on Kafka and PostgreSQL."""
    unused = tmp / "unused.jsonl"
    text = synth.config_toml(spec, unused, tmp / "state")
    text = text.replace(f'kind = "file"\npaths = ["{unused}"]', 'kind = "kafka"')
    text = text.replace(
        'name = "demo"', f'name = "{name}"\ncheckpoint_every_s = 1.0\npoll_timeout_s = 0.2'
    )
    text = text.replace(f'url = "sqlite:///{tmp / "state"}/state.db"', f'url = "{url}"')
    text += (
        f'\n[source.kafka]\nbootstrap_servers = "{bootstrap}"\n'
        f'predictions_topic = "{topics[0]}"\nlabels_topic = "{topics[1]}"\n'
        f"\n[leader]\nlease_s = {lease_s}\nrenew_s = {lease_s / 3}\n"
    )
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def consumed(engine: sa.Engine, name: str, topics: tuple[str, str]) -> tuple[int, float]:
    """Events covered by the pipeline's checkpoints, and the newest checkpoint's wall time."""
    from driftd.db import checkpoints

    c = checkpoints.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(c.offsets, c.created_at).where(c.pipeline == name)).all()
    except sa.exc.SQLAlchemyError:  # the first instance is still creating the schema
        return 0, NEVER
    n = sum(
        v
        for offsets, _ in rows
        for k, v in json.loads(offsets).items()
        if k.startswith((f"{topics[0]}[", f"{topics[1]}["))
    )
    return n, max((r.created_at for r in rows), default=NEVER)


@dataclass
class Cluster:
    """``driftd run`` processes of one pipeline (consumer group) on the published topics."""

    cfg: Path
    log: Path
    name: str
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self) -> None:
        cmd = [sys.executable, "-m", "driftd.cli", "run", "--config", str(self.cfg)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            p = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        self.procs[p.pid] = p

    def dead(self) -> list[int | None]:
        return [p.returncode for p in self.procs.values() if p.poll() is not None]

    def stop(self) -> None:
        """SIGTERM (a clean stop: final checkpoint, lease released), then SIGKILL after 60 s."""
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def consume_all(
    cluster: Cluster,
    n: int,
    engine: sa.Engine,
    topics: tuple[str, str],
    total: int,
    timeout: float,
) -> dict[str, Any]:
    """Start ``n`` processes at once; the time until their checkpoints cover ``total``."""
    start = time.time()
    for _ in range(n):
        cluster.spawn()
    first: tuple[float, int] | None = None
    end = time.monotonic() + timeout
    while True:
        got, newest = consumed(engine, cluster.name, topics)
        if got and first is None:
            first = (time.time(), got)
        if got >= total:
            break
        if cluster.dead() or time.monotonic() > end:
            raise RuntimeError(
                f"{n} instances: {got:,} of {total:,} consumed; exits {cluster.dead()}; "
                f"see {cluster.log}"
            )
        time.sleep(0.05)
    assert first is not None
    return {
        "instances": n,
        "events": total,
        "seconds": newest - start,
        "per_s": total / (newest - start),
        "first_checkpoint_s": first[0] - start,
        "steady_per_s": (total - first[1]) / max(newest - first[0], 1e-9),
        "cpu_s": sum(cpu_seconds(pid) for pid in cluster.procs),
    }


def ingest(args: argparse.Namespace, rng: random.Random) -> tuple[list[Row], dict[str, Any]]:
    """Part C, ``ingest_repeats`` rounds of 1, 2, 3 instances (interleaved), the best per
    count; then kills of the leading process of the last, largest cluster."""
    spec = synth.StreamSpec(events=args.kafka_events, seed=5, n_features=20, categorical=False)
    stream = synth.generate(spec)
    runs: list[dict[str, Any]] = []
    kills: dict[str, Any] = {}
    lease_s = args.run_lease_s
    with (
        broker() as bootstrap,
        fresh_postgres(args.pg_admin_url) as url,
        tempfile.TemporaryDirectory(prefix="driftd-scale-") as d,
    ):
        tmp = Path(d)
        t0 = time.perf_counter()
        topics, total = publish(stream, bootstrap, partitions=6, prefix="scale")
        progress(args, f"C published {total:,} messages in {time.perf_counter() - t0:.1f} s")
        engine = sa.create_engine(url)
        try:
            for rep in range(args.ingest_repeats):
                for n in args.instances:
                    name = f"scale-{n}-{uuid.uuid4().hex[:6]}"
                    cfg = run_config(spec, tmp, name, url, bootstrap, topics, lease_s)
                    cluster = Cluster(cfg, tmp / f"{name}.log", name)
                    try:
                        run = consume_all(cluster, n, engine, topics, total, args.ingest_timeout)
                        run["repeat"] = rep
                        runs.append(run)
                        progress(args, f"C {n} instance(s): {run}")
                        last = rep == args.ingest_repeats - 1 and n == max(args.instances)
                        if last and args.run_kills:
                            got = [
                                kill_leader(
                                    engine,
                                    name,
                                    cluster.procs,
                                    cluster.spawn,
                                    lease_s / 3,
                                    2 * lease_s + 60,
                                    rng,
                                )
                                for _ in range(args.run_kills)
                            ]
                            kills = {
                                "lease_s": lease_s,
                                "renew_s": lease_s / 3,
                                "holders": n,
                                "kills": got,
                                "overlaps": overlaps(engine, name),
                                "consumed_after": consumed(engine, name, topics)[0],
                            }
                            progress(args, f"C driftd run kills: {got}")
                    finally:
                        cluster.stop()
        finally:
            engine.dispose()
    rows = ingest_rows(runs)
    if kills:
        rows += failover_rows(
            kills, "driftd run", f"{kills['holders']} `driftd run` processes, idle (all consumed)"
        )
    return rows, {"runs": runs, "driftd_run_failover": kills, "lease_s": lease_s}


def ingest_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """C1 per instance count: its best run (from start to all consumed)."""
    cores = os.cpu_count()
    best: dict[int, dict[str, Any]] = {}
    for r in runs:
        if r["instances"] not in best or r["per_s"] > best[r["instances"]]["per_s"]:
            best[r["instances"]] = r
    base = best[min(best)]["per_s"] if best else None
    rows = []
    for n, r in sorted(best.items()):
        each = ", ".join(f"{x['per_s']:,.0f}" for x in runs if x["instances"] == n)
        rows.append(
            Row(
                f"C1 ingest, {n} `driftd run` instance(s), 6 partitions",
                r["per_s"],
                "events/s",
                baseline=base,
                ratio=r["per_s"] / base if base else None,
                note=(
                    f"best of [{each}]/s; {r['events']:,} events in {r['seconds']:.1f} s from "
                    f"start (first checkpoint at {r['first_checkpoint_s']:.1f} s; after it "
                    f"{r['steady_per_s']:,.0f}/s); {r['cpu_s']:.1f} CPU-s in all; {cores} cores"
                ),
            )
        )
    return rows


# -- D. the merge at the leader ------------------------------------------------------------


def merge_cost(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    """Reports of 3 partitions covering ``merge_events`` events (every prediction labelled),
    then the time of ``Brain.absorb`` + ``advance`` over them, as the leader would merge
    them (one merge per round of checkpoints)."""
    n = args.merge_events // 2
    ev = make_events(EventSpec(n, 7, label_rate=1.0))
    models = model_settings(MERGE_DETECTORS, max_label_delay_s=600.0)
    parts = Instances(models, 1, 3, old=False, detectors_in_brain=False)
    rounds: list[list[Report]] = []
    every = args.merge_report_every
    t0 = time.perf_counter()
    for lo in range(0, len(ev.lines), every):
        parts.poll(ev, lo, min(lo + every, len(ev.lines)))
        rounds.append(parts.final(len(rounds)))
    rounds.append(parts.final(len(rounds)))
    ingest_s = time.perf_counter() - t0
    events = len(ev.lines)
    del ev
    brain = Brain(models, LEADER)
    det = brain.detectors[MODEL]
    spent = [0.0]
    feed = det.feed

    def timed_feed(*a: Any) -> Any:
        t = time.perf_counter()
        try:
            return feed(*a)
        finally:
            spent[0] += time.perf_counter() - t

    det.feed = timed_feed  # type: ignore[method-assign,assignment]
    absorb = advance = 0.0
    alarms = 0
    for r, reps in enumerate(rounds):
        last = r == len(rounds) - 1
        t1 = time.perf_counter()
        brain.absorb(reps)
        t2 = time.perf_counter()
        mark = math.inf if last else brain.watermark(float(r), range(3), waited=False)
        alarms += len(brain.advance(mark))
        advance += time.perf_counter() - t2
        absorb += t2 - t1
    per = 1e6 / events
    total = absorb + advance
    values = brain.merged_values
    bytes_ = parts.report_bytes
    rows = [
        Row(
            "D1 leader merge (absorb + advance) per 1M events",
            total * per,
            "s",
            note=(
                f"absorb {absorb * per:.2f} s + advance {advance * per:.2f} s, of which the "
                f"detectors {spent[0] * per:.2f} s (they ran per partition before); "
                f"{events:,} events, 3 partitions, {len(rounds)} reports each"
            ),
        ),
        Row(
            "D2 merge overhead (without the detectors) per 1M events",
            (total - spent[0]) * per,
            "s",
            note=f"{values:,} detector values merged; {alarms} alarms",
        ),
        Row(
            "D3 report bytes per event",
            bytes_ / events,
            "B/event",
            note=(
                f"{bytes_ / 1e6:.1f} MB for {events:,} events ({bytes_ / values:.1f} B per "
                f"detector value); encoding at the partitions {parts.encode_s * per:.2f} s/1M"
            ),
        ),
    ]
    info = {
        "events": events,
        "predictions": n,
        "labels": n,
        "partitions": 3,
        "detectors": [det_key(d, s) for d, s, _ in MERGE_DETECTORS],
        "report_every_events": every,
        "rounds": len(rounds),
        "absorb_s": absorb,
        "advance_s": advance,
        "detector_s": spent[0],
        "report_bytes": bytes_,
        "merged_values": values,
        "encode_s": parts.encode_s,
        "partition_ingest_s": ingest_s,
    }
    return rows, info


# -- main ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return report.machine_info(sqlalchemy=sa.__version__, driftd_commit=report.git_commit())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run for smoke tests")
    ap.add_argument("--skip", default="", help="comma list: detect,failover,ingest,merge")
    ap.add_argument("--free-streams", type=int, help="drift-free streams (default 20)")
    ap.add_argument("--free-n", type=int, help="predictions per drift-free stream (50,000)")
    ap.add_argument("--drift-streams", type=int, help="streams with a change (default 20)")
    ap.add_argument("--drift-n", type=int, help="predictions per change stream (40,000)")
    ap.add_argument("--kills", type=int, help="kills per lease_s (default 10)")
    ap.add_argument("--lease-s", help="comma list of lease_s for part B (default 15,4)")
    ap.add_argument("--kafka-events", type=int, help="predictions published (default 100,000)")
    ap.add_argument("--instances", default="1,2,3", help="driftd run instances to compare")
    ap.add_argument("--run-kills", type=int, help="kills of the leading driftd run (default 6)")
    ap.add_argument("--run-lease-s", type=float, default=4.0, help="lease_s of the driftd runs")
    ap.add_argument("--ingest-repeats", type=int, help="rounds of part C (best of, default 2)")
    ap.add_argument("--ingest-timeout", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--merge-events", type=int, help="events in the merge reports (1,000,000)")
    ap.add_argument("--merge-report-every", type=int, default=30_000, help="events per round")
    ap.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    ap.add_argument("--lease-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    args.free_streams = args.free_streams or (4 if q else 20)
    args.free_n = args.free_n or (10_000 if q else 50_000)
    args.drift_streams = args.drift_streams or (4 if q else 20)
    args.drift_n = args.drift_n or (20_000 if q else 40_000)
    args.kills = args.kills or (3 if q else 10)
    args.lease_s = [float(x) for x in (args.lease_s or ("4" if q else "15,4")).split(",")]
    args.kafka_events = args.kafka_events or (10_000 if q else 100_000)
    args.instances = [int(x) for x in args.instances.split(",")]
    args.run_kills = args.run_kills if args.run_kills is not None else (2 if q else 6)
    args.ingest_repeats = args.ingest_repeats or (1 if q else 2)
    args.merge_events = args.merge_events or (200_000 if q else 1_000_000)
    args.skip = {s for s in args.skip.split(",") if s}
    return args


def skipped(name: str, unit: str, exc: BaseException) -> Row:
    first = str(exc).splitlines()[0][:160] if str(exc) else ""
    return Row(name, None, unit, note=f"skipped: {type(exc).__name__}: {first}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.lease_child:
        url, name, lease_s, renew_s = args.lease_child
        lease_child(url, name, float(lease_s), float(renew_s))
        return 0
    machine = machine_info()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    rows: list[Row] = []
    doc: dict[str, Any] = {}
    if "detect" not in args.skip:
        got, doc["detection"] = detection(args)
        rows += got
    if "failover" not in args.skip:
        doc["failover"] = []
        for lease_s in args.lease_s:
            try:
                with fresh_postgres(args.pg_admin_url) as url:
                    res = failover_leases(url, lease_s, args.kills, 3, rng, args)
            except (sa.exc.OperationalError, TimeoutError) as exc:
                rows.append(skipped(f"B failover, lease_s={lease_s:g}", "s", exc))
                continue
            doc["failover"].append(res)
            rows += failover_rows(res, "Lease", "3 processes holding a Lease, tick every 0.1 s")
    if "ingest" not in args.skip:
        try:
            got, doc["ingest"] = ingest(args, rng)
            rows += got
        except (sa.exc.OperationalError, TimeoutError, RuntimeError, OSError) as exc:
            rows.append(skipped("C ingest with driftd run instances", "events/s", exc))
    if "merge" not in args.skip:
        got, doc["merge"] = merge_cost(args)
        rows += got
    for r in rows:
        r.judge()
    total_s = round(time.perf_counter() - t0, 1)
    machine["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print_rows(rows, f"driftd scale-out benchmark ({'quick' if args.quick else 'full'})")
    params = {
        k: (sorted(v) if isinstance(v, set) else v)
        for k, v in vars(args).items()
        if k not in ("out", "lease_child", "verbose")
    }
    params.update(
        total_s=total_s,
        leader=LEADER.model_dump(),
        join=JOIN.model_dump(),
        detectors=[det_key(d, s) for d, s, _ in DETECTORS],
        rate_per_s=RATE,
        block_lines=BLOCK,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"machine": machine, "rows": [r.as_json() for r in rows], **doc, "params": params}
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {total_s} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
