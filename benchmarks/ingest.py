"""Ingest benchmark: replay throughput, memory per pending prediction, checkpoint times.

Run ``python benchmarks/ingest.py`` (``--quick`` for a smoke run). Every row is measured in
one process on one synthetic stream, so compare the ratios, not the absolute figures: the
project's machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from driftd.config import Settings, load_settings
from driftd.contracts.columns import PredictionColumns
from driftd.contracts.events import Label, Prediction
from driftd.daemon.abc import Checkpoint
from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.replay import replay_files
from driftd.sim import synth

try:
    from benchmarks import kafka_path, report
    from benchmarks.report import Row, print_rows
except ImportError:  # run as a script: python benchmarks/ingest.py
    import kafka_path  # type: ignore[no-redef]
    import report  # type: ignore[no-redef]
    from report import Row, print_rows  # type: ignore[no-redef]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ingest.json"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BLOCK = 1 << 20  # the same block size as driftd's FileSource
SEED = 0
BENCH_PIPELINE = "bench-ingest"
RSS_MIN_PENDING = 250_000  # below this, page and arena granularity swamps the RSS delta


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``repeats`` runs (seconds) and the last result."""
    best, result = math.inf, None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


# -- A. replay path ----------------------------------------------------------------------


def iter_lines(path: Path) -> Iterator[bytes]:
    """Non-empty lines of a file, read in 1 MiB blocks (as driftd's file source does)."""
    with path.open("rb") as fh:
        tail = b""
        while block := fh.read(BLOCK):
            parts = (tail + block).split(b"\n")
            tail = parts.pop()
            yield from filter(None, parts)
        if tail:
            yield tail


def naive_replay(path: Path, settings: Settings) -> dict[str, int]:
    """json.loads per line, a dict join by id with max label delay and lateness, per-version
    counts: what a careful person would write in an afternoon instead of driftd."""
    ((model, ms),) = settings.models.items()
    names, allowed = tuple(ms.features), frozenset(ms.features)
    max_bytes, delay = settings.ingest.max_event_bytes, ms.max_label_delay_s
    lateness = settings.join.allowed_lateness_s
    preds: dict[str, list[Any]] = {}  # id -> [ts, version, features, prediction, joined]
    waiting: dict[str, tuple[float, Any]] = {}  # labels without their prediction yet
    pfifo: deque[tuple[float, str]] = deque()
    lfifo: deque[tuple[float, str]] = deque()
    # version -> [predictions, errors, latency sum, joined, correct, expired]
    versions: dict[str, list[float]] = {}
    c = dict.fromkeys(("consumed", "bad", "duplicates", "joined", "expired", "unmatched"), 0)
    watermark = -math.inf

    def join(p: list[Any], label: Any) -> None:
        p[4] = True
        v = versions[p[1]]
        v[3] += 1
        v[4] += p[3] == label
        c["joined"] += 1

    for line in iter_lines(path):
        c["consumed"] += 1
        try:
            if len(line) > max_bytes:
                raise ValueError("oversized")
            obj = json.loads(line)  # UnicodeDecodeError is a ValueError
            id_, ts, kind = obj["id"], obj["ts"], obj["kind"]
            if obj["model"] != model or not 0 <= ts <= 1e11:
                raise ValueError("unknown model or bad ts")
            if kind == "prediction":
                feats = obj["features"]
                if not allowed.issuperset(feats):
                    raise ValueError("unknown feature")
                if id_ in preds:
                    c["duplicates"] += 1
                    continue
                version = obj["version"]
                p = preds[id_] = [ts, version, [feats.get(n) for n in names], obj["prediction"], 0]
                pfifo.append((ts, id_))
                v = versions.get(version) or versions.setdefault(version, [0, 0, 0.0, 0, 0, 0])
                v[0] += 1
                v[1] += obj.get("error") is not None
                v[2] += obj.get("latency_ms") or 0.0
                w = waiting.pop(id_, None)
                if w is not None and w[0] - ts <= delay:
                    join(p, w[1])
            elif kind == "label":
                held = preds.get(id_)
                if (held is not None and held[4]) or id_ in waiting:
                    c["duplicates"] += 1
                elif held is not None and ts - held[0] <= delay:
                    join(held, obj["label"])
                else:
                    waiting[id_] = (ts, obj["label"])
                    lfifo.append((ts, id_))
            else:
                raise ValueError("unknown kind")
        except (KeyError, TypeError, ValueError):
            c["bad"] += 1
            continue
        if ts > watermark:
            watermark = ts
            limit = watermark - lateness - delay
            while pfifo and pfifo[0][0] < limit:
                p = preds.pop(pfifo.popleft()[1])
                if not p[4]:
                    versions[p[1]][5] += 1
                    c["expired"] += 1
            while lfifo and lfifo[0][0] < watermark - lateness:
                if waiting.pop(lfifo.popleft()[1], None) is not None:
                    c["unmatched"] += 1
    return c


def msgspec_alone(path: Path) -> dict[str, int]:
    """Every line decoded into a typed Prediction or Label, and nothing else."""
    decoder = msgspec.json.Decoder(Prediction | Label)
    ok = bad = 0
    for line in iter_lines(path):
        try:
            decoder.decode(line)
            ok += 1
        except (msgspec.DecodeError, UnicodeDecodeError):
            bad += 1
    return {"consumed": ok + bad, "bad": bad}


def driftd_replay(settings: Settings, path: Path, dlq: Path) -> dict[str, Any]:
    """driftd's one-shot replay: file -> decode -> join -> monitors."""
    return replay_files(settings, [path], dlq, progress=False)


@dataclass
class StreamFiles:
    """The generated stream on disk."""

    events: Path
    settings: Settings
    lines: int
    nbytes: int
    truth: dict[str, Any]
    gen_s: float


def stream_spec(events: int, malformed_rate: float) -> synth.StreamSpec:
    """20 numeric features, no categorical ones, fixed seed."""
    return synth.StreamSpec(
        events=events, seed=SEED, n_features=20, categorical=False, malformed_rate=malformed_rate
    )


def stream_settings(spec: synth.StreamSpec, out: Path) -> Settings:
    """The driftd.toml that ``synth`` writes for the stream, loaded (no file needed yet)."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / "driftd.toml"
    config.write_text(synth.config_toml(spec, out / "events.jsonl", out / "state"))
    return load_settings(config, env={})


def make_stream(spec: synth.StreamSpec, out: Path) -> StreamFiles:
    """Write the synthetic prediction + label stream and its driftd.toml."""
    t0 = time.perf_counter()
    paths = synth.write(spec, out)
    gen_s = time.perf_counter() - t0
    with paths["events"].open("rb") as fh:
        lines = sum(1 for line in fh if line.strip(b"\n"))
    settings = load_settings(paths["config"], env={})
    truth = json.loads(paths["truth"].read_bytes())
    nbytes = paths["events"].stat().st_size
    return StreamFiles(paths["events"], settings, lines, nbytes, truth, gen_s)


def replay_rows(s: StreamFiles, repeats: int, dlq: Path) -> tuple[list[Row], dict[str, Any]]:
    """Rows A: events/s of the three replay paths, interleaved, best of ``repeats``."""
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "naive": lambda: naive_replay(s.events, s.settings),
        "msgspec": lambda: msgspec_alone(s.events),
        "driftd": lambda: driftd_replay(s.settings, s.events, dlq),
    }
    best = dict.fromkeys(runs, math.inf)
    results: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):  # interleaved, so a noisy neighbour hurts every path alike
        for name, fn in runs.items():
            secs, results[name] = best_of(1, fn)
            best[name] = min(best[name], secs)
    rate = {name: s.lines / secs for name, secs in best.items()}
    for name, r in results.items():
        if r["consumed"] != s.lines:
            raise RuntimeError(f"{name} consumed {r['consumed']} of {s.lines} lines")
    truth = s.truth["models"][synth.MODEL]
    joined = {
        "truth": truth["joined"],
        "naive": results["naive"]["joined"],
        "driftd": results["driftd"]["models"][synth.MODEL]["joined"],
    }
    dead = {
        "truth": s.truth["dead_lettered"]["total"],
        "naive": results["naive"]["bad"],
        "msgspec": results["msgspec"]["bad"],
        "driftd": results["driftd"]["dead_lettered"]["total"],
    }
    agree = len(set(joined.values())) == 1
    rows = [
        Row("A1 replay: naive json.loads + dict join", rate["naive"], "events/s"),
        Row("A2 replay: msgspec decode alone", rate["msgspec"], "events/s"),
        Row(
            "A3 replay: driftd full pipeline",
            rate["driftd"],
            "events/s",
            baseline=rate["msgspec"],
            ratio=rate["driftd"] / rate["msgspec"],
            target={"op": ">=", "value": 0.70, "of": "ratio"},
            note="ratio = driftd / msgspec alone",
        ),
        Row(
            "A4 replay: driftd vs naive",
            rate["driftd"],
            "events/s",
            baseline=rate["naive"],
            ratio=rate["driftd"] / rate["naive"],
            note="" if agree else f"joined counts differ: {joined}",
        ),
    ]
    return rows, {"best_s": best, "joined": joined, "dead_lettered": dead}


# -- B. memory per pending prediction ----------------------------------------------------


def pending_settings(settings: Settings) -> Settings:
    """The stream's settings with labels that never come due and room for every prediction."""
    models = {
        name: m.model_copy(update={"max_label_delay_s": 1e12})
        for name, m in settings.models.items()
    }
    join = settings.join.model_copy(update={"max_pending": max(settings.join.max_pending, 1 << 24)})
    return settings.model_copy(update={"models": models, "join": join})


def fill_pending(pipeline: Pipeline, n: int, batch: int = 5000) -> float:
    """Add n predictions without labels to partition 0; return the seconds it took."""
    model = pipeline.partition(0).models[synth.MODEL]
    k = len(model.schema.numeric_names)
    code = model.versions.code("1")
    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    for lo in range(0, n, batch):
        m = min(batch, n - lo)
        cols = PredictionColumns(
            ids=[f"p{i}" for i in range(lo, lo + m)],
            version=np.full(m, code, dtype=np.int32),
            ts=1.7e9 + np.arange(lo, lo + m, dtype=np.float64) / 50.0,
            numeric=rng.standard_normal((m, k)),
            categorical=np.empty((m, 0), dtype=np.int32),
            prediction=(rng.random(m) < 0.5).astype(np.float64),
            score=rng.random(m),
            latency_ms=rng.lognormal(3.0, 0.5, m),
            error=np.zeros(m, dtype=np.bool_),
        )
        model.store.add_predictions(cols)
    elapsed = time.perf_counter() - t0
    if model.store.pending != n:
        raise RuntimeError(f"{model.store.pending} pending after adding {n}")
    return elapsed


def rss_bytes() -> int | None:
    """Resident set size of this process, where /proc has it."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def traced_bytes(settings: Settings, n: int) -> tuple[int, int]:
    """Bytes that a fill of n pending predictions keeps, and its peak, by tracemalloc."""
    pipeline = Pipeline(settings.models, settings.ingest, settings.join)
    pipeline.partition(0)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fill_pending(pipeline, n)
        gc.collect()
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return cur - base, peak - base


MEMORY_FEATURES = {f"f{j}": "numeric" for j in range(20)} | {
    "c0": "categorical",
    "c1": "categorical",
}


def memory_child(n: int) -> dict[str, Any]:
    """RSS per pending prediction of one join store filled with n predictions (20 numeric and
    2 categorical features, 36-character ids), measured in this (fresh) process."""
    from driftd.config import IngestSettings, JoinSettings, ModelSettings

    models = {synth.MODEL: ModelSettings(features=MEMORY_FEATURES, max_label_delay_s=1e12)}
    pipeline = Pipeline(models, IngestSettings(), JoinSettings(max_pending=max(n, 1)))
    model = pipeline.partition(0).models[synth.MODEL]
    code = model.versions.code("1")
    rng = np.random.default_rng(SEED)
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    for lo in range(0, n, 5000):
        m = min(5000, n - lo)
        model.store.add_predictions(
            PredictionColumns(
                ids=[
                    f"{i:08x}-7c1e-4b7a-8f3d-{i * 2654435761 % 16**12:012x}"
                    for i in range(lo, lo + m)
                ],
                version=np.full(m, code, dtype=np.int32),
                ts=1.7e9 + np.arange(lo, lo + m, dtype=np.float64) / 50.0,
                numeric=rng.standard_normal((m, 20)),
                categorical=rng.integers(0, 5, (m, 2)).astype(np.int32),
                prediction=(rng.random(m) < 0.5).astype(np.float64),
                score=rng.random(m),
                latency_ms=rng.lognormal(3.0, 0.5, m),
                error=np.zeros(m, dtype=np.bool_),
            )
        )
    fill_s = time.perf_counter() - t0
    gc.collect()
    rss1 = rss_bytes()
    if model.store.pending != n:
        raise RuntimeError(f"{model.store.pending} pending after adding {n}")
    per = (rss1 - rss0) / n if rss0 is not None and rss1 is not None and n else None
    return {"pending": n, "rss_bytes_per_pending": per, "fill_s": round(fill_s, 3)}


def rss_row(n: int) -> tuple[Row, dict[str, Any]]:
    """Row B2: the RSS delta per pending prediction, from a fresh process (see memory_child),
    so that nothing measured before it (freed arenas, caches) hides or inflates its pages."""
    target = {"op": "<=", "value": 400, "of": "value"}
    name = f"B2 memory per pending, RSS delta in a fresh process ({n:,})"
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return Row(name, None, "B/pending", note=f"child failed: {proc.stderr[-200:]}"), {}
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = info["rss_bytes_per_pending"]
    note = "20 numeric + 2 categorical features, 36-character ids"
    if rss is None:
        note = "no /proc/self/statm"
    elif n < RSS_MIN_PENDING:
        note = f"not judged below {RSS_MIN_PENDING:,} pending (allocator granularity)"
    judged = target if rss is not None and n >= RSS_MIN_PENDING else None
    return Row(name, rss, "B/pending", target=judged, note=note), info


def memory_rows(settings: Settings, n: int) -> tuple[list[Row], Pipeline, dict[str, Any]]:
    """Row B1 (tracemalloc), and the filled pipeline that the checkpoint rows reuse."""
    target = {"op": "<=", "value": 400, "of": "value"}
    pipeline = Pipeline(settings.models, settings.ingest, settings.join)
    pipeline.partition(0)
    fill_s = fill_pending(pipeline, n)
    kept, peak = traced_bytes(settings, n)  # a second, throw-away pipeline
    gc.collect()
    rows = [
        Row(
            f"B1 memory per pending, tracemalloc ({n:,})",
            kept / n,
            "B/pending",
            target=target,
            note=f"peak while filling {peak / n:.0f} B/pending",
        ),
    ]
    info = {
        "pending": n,
        "fill_s": round(fill_s, 3),
        "fill_per_s": round(n / fill_s),
        "store_columns_bytes_per_pending": pipeline.partition(0).models[synth.MODEL].store.nbytes()
        / n,
        "id_example": f"p{n - 1}",
    }
    return rows, pipeline, info


# -- C. checkpoint save and restore ------------------------------------------------------


def checkpoint_rows(
    pipeline: Pipeline, settings: Settings, backend: str, url: str, repeats: int
) -> list[Row]:
    """Rows C for one backend: snapshot + save, and load + restore, best of ``repeats``.

    ``settings`` must be the ones ``pipeline`` was built with (see pending_settings).
    """
    n = pipeline.partition(0).models[synth.MODEL].store.pending
    target = {"op": "<=", "value": 2.0, "of": "value"}
    try:
        store = SqlCheckpointStore.open(url, settings.checkpoint.chunk_bytes)
    except Exception as exc:  # any failure to connect skips the backend, with its reason
        reason = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
        return [Row(f"C checkpoint save, {backend}", None, "s", note=reason)]
    t: dict[str, float] = dict.fromkeys(("snapshot", "save", "load", "restore"), math.inf)
    blob = b""
    try:
        for seq in range(1, repeats + 1):
            gc.collect()
            t0 = time.perf_counter()
            blob = pipeline.snapshot(0)
            t1 = time.perf_counter()
            offsets = dict(pipeline.partition(0).offsets)
            store.save(BENCH_PIPELINE, [Checkpoint(0, seq, offsets, blob, time.time())])
            t2 = time.perf_counter()
            cp = store.load(BENCH_PIPELINE, 0)
            t3 = time.perf_counter()
            if cp is None:
                raise RuntimeError("the checkpoint just saved is missing")
            restored = Pipeline(settings.models, settings.ingest, settings.join)
            restored.restore(0, cp.blob)
            t4 = time.perf_counter()
            if restored.partition(0).models[synth.MODEL].store.pending != n:
                raise RuntimeError("restored store lost pending predictions")
            del cp, restored
            for key, secs in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                t[key] = min(t[key], secs)
        store.delete(BENCH_PIPELINE)
    finally:
        store.close()
    return [
        Row(
            f"C1 checkpoint save, {backend} ({n:,} pending)",
            t["snapshot"] + t["save"],
            "s",
            target=target,
            note=f"snapshot {t['snapshot']:.2f} s + save {t['save']:.2f} s",
        ),
        Row(
            f"C2 checkpoint restore, {backend} ({n:,} pending)",
            t["load"] + t["restore"],
            "s",
            target=target,
            note=f"load {t['load']:.2f} s + restore {t['restore']:.2f} s",
        ),
        Row(
            f"C3 checkpoint blob, {backend}",
            len(blob) / 1e6,
            "MB",
            note=f"{len(blob) / n:.0f} B/pending",
        ),
    ]


# -- D. Kafka ----------------------------------------------------------------------------


def kafka_rows(events: int, repeats: int) -> list[Row]:
    """Rows D: driftd's Kafka source + pipeline vs the raw client, for each client library.

    The target (issue: driftd adds <= 20%) compares the time to consume and process every
    message with the time the bare client takes to consume them, on the same topics.
    """
    try:
        measured = kafka_path.measure(events, repeats)
    except Exception as exc:  # no broker here: report it in the table, not as a crash
        return [Row("D kafka path", None, "events/s", note=f"skipped: {exc!r}")]
    rows = []
    for m in measured:
        raw, ours = m["raw_per_s"], m["driftd_per_s"]
        rows.append(
            Row(
                f"D1 kafka raw consumer ({m['client']})",
                raw,
                "events/s",
                note=f"{m['events']:,} messages; rate after the first batch",
            )
        )
        rows.append(
            Row(
                f"D2 kafka driftd ({m['client']})",
                ours,
                "events/s",
                baseline=raw,
                ratio=raw / ours,
                target={"op": "<=", "value": 1.2, "of": "ratio"},
                note="ratio = driftd time / raw client time (<= 1.2: adds <= 20%)",
            )
        )
    return rows


# -- output ------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import sqlalchemy

    return report.machine_info(
        msgspec=msgspec.__version__,
        sqlalchemy=sqlalchemy.__version__,
        driftd_commit=report.git_commit(),
    )


def profiled(label: str, fn: Callable[[], Any], top: int = 15) -> str:
    """Run fn under cProfile; its top entries by own time, as text."""
    prof = cProfile.Profile()
    prof.runcall(fn)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return f"\n== cProfile: {label} (top {top} by tottime) ==\n{buf.getvalue().strip()}\n"


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run for smoke tests")
    ap.add_argument("--events", type=int, help="predictions in the replay stream")
    ap.add_argument("--pending", type=int, help="pending predictions for memory/checkpoints")
    ap.add_argument("--repeats", type=int, help="repetitions (best of) per timed row")
    ap.add_argument("--malformed-rate", type=float, default=synth.StreamSpec.malformed_rate)
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL; 'none' skips it")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    ap.add_argument("--profile", action="store_true", help="print cProfile hot spots")
    ap.add_argument("--kafka-events", type=int, help="predictions in the Kafka stream")
    ap.add_argument("--no-kafka", action="store_true", help="skip the Kafka rows")
    ap.add_argument(
        "--memory-pending", type=int, help="pending predictions for the RSS row (a subprocess)"
    )
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.events = args.events or (3_000 if args.quick else 200_000)
    # 31,250 = 1M / 32 fills the ring to the same fraction of its capacity as 1M does.
    args.pending = args.pending or (31_250 if args.quick else 1_000_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.kafka_events = args.kafka_events or (2_000 if args.quick else 50_000)
    args.memory_pending = args.memory_pending or (100_000 if args.quick else 2_000_000)
    return args


def state_rows(
    args: argparse.Namespace, ps: Settings, tmp: Path, profiles: list[str]
) -> tuple[list[Row], dict[str, Any]]:
    """Rows B and C; the filled pipeline is freed on return."""
    rss, rss_info = rss_row(args.memory_pending)
    mem, pipeline, mem_info = memory_rows(ps, args.pending)
    mem.append(rss)
    mem_info["rss_child"] = rss_info
    ckpt = checkpoint_rows(pipeline, ps, "sqlite", f"sqlite:///{tmp / 'state.db'}", args.repeats)
    if args.pg_url != "none":
        ckpt += checkpoint_rows(pipeline, ps, "postgresql", args.pg_url, args.repeats)
    else:
        ckpt.append(Row("C checkpoint, postgresql", None, "s", note="skipped: --pg-url none"))
    if args.profile:
        fresh = Pipeline(ps.models, ps.ingest, ps.join)
        profiles.append(
            profiled("snapshot + restore", lambda: fresh.restore(0, pipeline.snapshot(0)))
        )
    return [*mem, *ckpt], mem_info


def run_all(args: argparse.Namespace, tmp: Path) -> tuple[list[Row], dict[str, Any], list[str]]:
    """Every row, in an order that keeps the measurements apart; params; profiles."""
    profiles: list[str] = []
    spec = stream_spec(args.events, args.malformed_rate)
    # B and C first (B2 in a child process); the stream is generated afterwards.
    ps = pending_settings(stream_settings(spec, tmp / "cfg"))
    state, mem_info = state_rows(args, ps, tmp, profiles)
    gc.collect()
    stream = make_stream(spec, tmp / "stream")
    dlq = tmp / "dlq.jsonl"
    replay, replay_info = replay_rows(stream, args.repeats, dlq)
    if args.profile:
        profiles.insert(
            0, profiled("driftd replay", lambda: driftd_replay(stream.settings, stream.events, dlq))
        )
    params = {
        "quick": args.quick,
        "seed": SEED,
        "events_predictions": args.events,
        "events_lines": stream.lines,
        "file_bytes": stream.nbytes,
        "n_features": 20,
        "categorical": False,
        "malformed_rate": args.malformed_rate,
        "repeats": args.repeats,
        "generate_s": round(stream.gen_s, 3),
        "replay": replay_info,
        "memory": mem_info,
    }
    kafka = [] if args.no_kafka else kafka_rows(args.kafka_events, args.repeats)
    params["kafka_events_predictions"] = None if args.no_kafka else args.kafka_events
    return [*replay, *state, *kafka], params, profiles


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child is not None:
        print(json.dumps(memory_child(args.memory_child)))
        return 0
    machine = machine_info()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="driftd-bench-") as tmp:
        rows, params, profiles = run_all(args, Path(tmp))
    for r in rows:
        r.judge()
    params["total_s"] = round(time.perf_counter() - t0, 1)
    machine["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print_rows(rows, f"driftd ingest benchmark ({'quick' if args.quick else 'full'})")
    for text in profiles:
        print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine, "rows": [r.as_json() for r in rows], "params": params}
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {params['total_s']} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
