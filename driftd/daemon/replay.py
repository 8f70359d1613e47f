"""One-shot processing of event files, and reading the daemon's checkpointed counts."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from driftd.config import FileSourceSettings, Settings
from driftd.daemon.app import build_pipeline, dlq_path
from driftd.daemon.brain import Brain
from driftd.daemon.checkpoint import MemoryCheckpointStore, SqlCheckpointStore
from driftd.daemon.lease import current
from driftd.daemon.runner import Runner
from driftd.daemon.sinks import FileDeadLetterSink
from driftd.daemon.sources.file import FileSource
from driftd.daemon.summary import JOIN_KEYS
from driftd.db import make_engine
from driftd.textsafe import markup_safe

log = logging.getLogger("driftd.replay")
REPLAY_REPORT_EVENTS = 200_000


def replay_files(
    settings: Settings, files: list[Path], dlq: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Process ``files`` from empty state to their end; return the summary."""
    pipeline = build_pipeline(settings)
    source = FileSource(files, settings.ingest.max_event_bytes)
    dlq = dlq or dlq_path(settings, FileSourceSettings(paths=files))
    sink = FileDeadLetterSink(dlq)
    sink.restore({})  # a replay starts from nothing, so does its dead-letter file
    # In memory, no offsets to keep: a checkpoint only hands the partition's summaries to the
    # leader, so that they do not pile up until the end.
    ps = settings.pipeline.model_copy(
        update={"checkpoint_every_events": REPLAY_REPORT_EVENTS, "checkpoint_every_s": 1e12}
    )
    runner = Runner(pipeline, source, sink, MemoryCheckpointStore(), ps)
    runner.assign([0])
    total = sum(f.stat().st_size for f in files)
    t0 = time.perf_counter()
    try:
        if progress and sys.stderr.isatty():
            _with_progress(runner, source, total)
        else:
            _with_log_lines(runner, source, total)
        runner.finish(exhausted=True)
    finally:
        sink.close()
        source.close()
    summary = pipeline.summary(runner.leader.alarms())
    elapsed = time.perf_counter() - t0
    summary["elapsed_s"] = round(elapsed, 3)
    summary["events_per_s"] = round(summary["consumed"] / elapsed) if elapsed else None
    summary["dead_letter_file"] = str(dlq)
    # Last lines without their newline: left unread (a later run reads them once complete).
    summary["unterminated"] = [dataclasses.asdict(u) for u in source.unterminated.values()]
    return summary


def _bytes_done(source: FileSource, runner: Runner) -> int:
    offsets = runner.pipeline.partition(0).offsets
    return sum(offsets.get(str(p), 0) for p in source.paths)


def _with_progress(runner: Runner, source: FileSource, total: int) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("replay"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("replay", total=total, events=0)
        while not source.exhausted:
            runner.step()
            bar.update(
                task,
                completed=_bytes_done(source, runner),
                events=runner.pipeline.partition(0).consumed,
            )
        bar.update(task, completed=total)


def _with_log_lines(runner: Runner, source: FileSource, total: int) -> None:
    last = time.monotonic()
    while not source.exhausted:
        runner.step()
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            log.info(
                "replay progress",
                extra={
                    "bytes": _bytes_done(source, runner),
                    "total_bytes": total,
                    "events": runner.pipeline.partition(0).consumed,
                },
            )


def checkpoint_status(settings: Settings) -> dict[str, Any]:
    """The counts held in the daemon's checkpoints, summed over partitions."""
    engine = make_engine(settings.checkpoint.url)
    store = SqlCheckpointStore.open(engine, settings.checkpoint.chunk_bytes)
    try:
        pipeline = build_pipeline(settings)
        name = settings.pipeline.name
        for p in store.partitions(name):
            cp = store.load(name, p)
            if cp is not None:
                pipeline.restore(p, cp.blob)
        brain = Brain(settings.models, settings.leader)
        blob = store.load_leader(name)
        if blob is not None:
            brain.load_blob(blob)
        summary = pipeline.summary(brain.alarms())
        summary["checkpoints"] = store.info(name)
        summary["leader"] = {
            "lease": current(store.engine, name),
            "event_clock": brain.clock(),
            "held_buckets": brain.held_buckets(),
            "late_values": brain.late_values,
            "reports_waiting": len(store.reports(name)),
        }
    finally:
        store.close()
    return summary


def _print_alarms(
    console: Any, alarms: list[dict[str, Any]], totals: dict[str, int], first: int = 12
) -> None:
    """The first drift alarms kept, in event time, and how many alarms of each kind fired
    (``totals``; the state keeps the most recent alarms only)."""
    import datetime as dt

    from rich.table import Table

    drifts = sorted((a for a in alarms if a["kind"] == "drift"), key=lambda a: a["ts"])
    n_drifts = totals.get("drift", len(drifts))
    warnings = totals.get("warning", len(alarms) - len(drifts))
    if not drifts:
        console.print(f"no drift alarms ({warnings:,} warnings)")
        return
    day = dt.datetime.fromtimestamp(drifts[0]["ts"], dt.UTC).strftime("%Y-%m-%d")
    kept = "" if n_drifts == len(drifts) else f" of the last {len(drifts):,} kept"
    # A line of its own: a table's title wraps at the table's width.
    console.print(
        f"{n_drifts:,} drift alarms, {warnings:,} warnings "
        f"(first {min(first, len(drifts))}{kept} drifts; {day}, UTC)"
    )
    t = Table()
    for col in ("time", "model", "version", "stream", "detector", "statistic"):
        t.add_column(col, justify="right" if col == "statistic" else "left")
    for a in drifts[:first]:
        when = dt.datetime.fromtimestamp(a["ts"], dt.UTC).strftime("%H:%M:%S")
        version = markup_safe(a["version"])  # from the stream: escaped
        t.add_row(when, a["model"], version, a["stream"], a["detector"], f"{a['statistic']:.4g}")
    console.print(t)


def _day(rows: list[dict[str, Any]]) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(rows[-1]["start"], dt.UTC).strftime("%Y-%m-%d")


def _windows_table(name: str, rows: list[dict[str, Any]], last: int) -> Any:
    """A model's last ``last`` windows: volume, errors, latency and joins per version."""
    import datetime as dt

    from rich.table import Table

    w = Table(
        title=f"{name}: last {min(last, len(rows))} windows ({_day(rows)}, UTC)",
        title_justify="left",
    )
    for col in (
        "window",
        "version",
        "predictions",
        "errors",
        "latency mean",
        "p95 ≤",
        "joined",
        "expired",
    ):
        w.add_column(col, justify="left" if col == "window" else "right")
    for r in rows[-last:]:
        start = dt.datetime.fromtimestamp(r["start"], dt.UTC).strftime("%H:%M")
        err = "-" if r["error_rate"] is None else f"{r['error_rate']:.2%}"
        lat = "-" if r["latency_mean_ms"] is None else f"{r['latency_mean_ms']:.1f} ms"
        p95 = r["latency_p95_ms_at_most"]
        w.add_row(
            start,
            markup_safe(r["version"]),  # from the stream: escaped
            f"{r['predictions']:,}",
            err,
            lat,
            "-" if p95 is None else f"{p95:g} ms",
            f"{r['joined']:,}",
            f"{r['expired']:,}",
        )
    return w


def _counts_tables(summary: dict[str, Any]) -> tuple[Any, Any]:
    """The join counts per model, and the dead letters by reason."""
    from rich.table import Table

    models = list(summary["models"])
    t = Table(title=f"{summary['consumed']:,} events consumed", title_justify="left")
    t.add_column("join")
    for name in models:
        t.add_column(name, justify="right")
    for key in JOIN_KEYS:
        t.add_row(key.replace("_", " "), *(f"{summary['models'][m][key]:,}" for m in models))
    dead = summary["dead_lettered"]
    d = Table(title=f"{dead['total']:,} dead-lettered", title_justify="left")
    d.add_column("reason")
    d.add_column("events", justify="right")
    for reason, n in dead["by_reason"].items():
        d.add_row(reason, f"{n:,}")
    return t, d


def print_summary(summary: dict[str, Any], last_windows: int = 8) -> None:
    """A readable summary on the terminal: join counts, dead letters, recent windows."""
    from rich.console import Console

    console = Console()
    for table in _counts_tables(summary):
        console.print(table)
    if summary.get("ignored", {}).get("total"):
        console.print(f"ignored by policy: {summary['ignored']['by_reason']}")
    for name, rows in summary.get("windows", {}).items():
        if rows:
            console.print(_windows_table(name, rows, last_windows))
    leader = summary.get("leader")
    if leader is not None:
        lease = leader["lease"]
        who = (
            "no leader yet"
            if lease is None
            else f"leader {lease['holder']} (epoch {lease['epoch']}, lease "
            + (f"{lease['expires_in_s']:.0f}s left)" if lease["expires_in_s"] > 0 else "expired)")
        )
        console.print(
            f"{markup_safe(who)}; decisions up to event time {leader['event_clock']:.0f}, "
            f"{leader['held_buckets']} bucket(s) held, {leader['reports_waiting']} report(s) "
            f"waiting, {leader['late_values']} late value(s)"
        )
    totals = summary.get("alarm_totals", {}).get("by_kind", {})
    _print_alarms(console, summary.get("alarms", []), totals)
    if "events_per_s" in summary:
        console.print(
            f"{summary['elapsed_s']}s, {summary['events_per_s']:,} events/s; "
            f"dead letters in {summary['dead_letter_file']}"
        )
