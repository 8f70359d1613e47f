"""Several writer processes on one labeled-store root: no lost, overwritten or doubled rows."""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from driftd.retrain.snapshot import SnapshotSpec, TimeRange, make_snapshot
from driftd.retrain.store import LabeledRows, LabeledStore, day_of

DAY = 86_400.0
T0 = 1_700_006_400.0  # 2023-11-15T00:00:00Z
WRITERS = 3
BATCHES = 40
BATCH = 50  # rows per append; every append is flushed, so one part per (batch, day)


def rows(ts: np.ndarray, prefix: str, seed: int = 0) -> LabeledRows:
    """Rows at the given times; ids ``<prefix><i>``."""
    n = len(ts)
    rng = np.random.default_rng(seed)
    return LabeledRows(
        ids=[f"{prefix}{i}" for i in range(n)],
        ts=np.asarray(ts, np.float64),
        label_ts=np.asarray(ts, np.float64) + 1.0,
        version=rng.integers(0, 2, n).astype(np.int32),
        version_names=["v1", "v2"],
        numeric=rng.normal(size=(n, 2)),
        numeric_names=["a", "b"],
        categorical=rng.integers(-1, 3, (n, 1)).astype(np.int32),
        categorical_names=["color"],
        categorical_vocabs=[["red", "green", "blue"]],
        prediction=rng.random(n),
        score=np.full(n, np.nan),
        label=rng.integers(0, 2, n).astype(np.float64),
    )


def _writer(root: str, w: int, start: Any, out: Any) -> None:
    """One writer process: every batch spans two days, so all writers share both partitions."""
    store = LabeledStore(Path(root), max_buffer_rows=1)
    start.wait(60)
    written: list[tuple[str, int]] = []
    for b in range(BATCHES):
        ts = T0 + DAY - BATCH // 2 + np.arange(BATCH, dtype=np.float64)  # straddles midnight
        for p in store.append("m", rows(ts, f"w{w}-b{b}-", seed=w * 1000 + b)):
            written.append((str(p), pq.read_metadata(p).num_rows))
    out.put((w, store.writer, written))


def test_concurrent_writers_lose_and_double_no_row(tmp_path: Path) -> None:
    day1, day2 = (tmp_path / "model=m" / f"date={day_of(T0 + k * DAY)}" for k in (0, 1))
    # A part from before writer tokens existed, and temp files of other (maybe crashed) writers.
    day1.mkdir(parents=True)
    pq.write_table(rows(T0 + np.arange(5.0), "old-").to_table(), day1 / "part-00000000.parquet")
    stale = day1 / ".part-00000001.parquet.tmp"  # an old-style writer killed mid-write
    crashed = day2 / ".part-otherhost-7-0123456789ab-00000003.parquet.tmp"
    fresh = day1 / ".part-otherhost-8-ba9876543210-00000000.parquet.tmp"  # being written now
    day2.mkdir(parents=True)
    for f in (stale, crashed, fresh):
        f.write_bytes(b"PAR1 half a file")
    old = time.time() - 2 * 3600
    for f in (stale, crashed):
        os.utime(f, (old, old))

    ctx = mp.get_context("spawn")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, start, out)) for w in range(3)]
    for p in procs:
        p.start()
    start.set()
    reader = LabeledStore(tmp_path)
    scans = 0
    results: list[tuple[int, str, list[tuple[str, int]]]] = []
    deadline = time.monotonic() + 240
    while len(results) < WRITERS:  # read while they write: whole parts only, never a row twice
        assert time.monotonic() < deadline, "writers did not finish"
        assert all(p.exitcode in (None, 0) for p in procs), "a writer failed"
        table = reader.scan("m")
        ids = table.column("id").to_pylist()
        assert len(ids) == len(set(ids))
        assert (table.num_rows - 5) % (BATCH // 2) == 0
        scans += 1
        while not out.empty():
            results.append(out.get())
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert scans > 0

    tokens = {token for _, token, _ in results}
    assert len(tokens) == WRITERS  # one token per writer process
    paths = [path for _, _, written in results for path, _ in written]
    assert len(paths) == len(set(paths)) == WRITERS * BATCHES * 2  # no name picked twice
    for _, _, written in results:  # no part was overwritten: each holds what its writer wrote
        for path, n in written:
            assert pq.read_metadata(path).num_rows == n == BATCH // 2

    table = LabeledStore(tmp_path).scan("m")
    counts = collections.Counter(table.column("id").to_pylist())
    expected = {
        f"w{w}-b{b}-{i}" for w in range(WRITERS) for b in range(BATCHES) for i in range(BATCH)
    }
    expected |= {f"old-{i}" for i in range(5)}
    assert set(counts) == expected  # every row written is read back ...
    assert set(counts.values()) == {1}  # ... exactly once

    assert not stale.exists() and not crashed.exists()  # stale leftovers: cleaned
    assert fresh.exists()  # a young foreign temp file may be a part being written: kept

    files = LabeledStore(tmp_path).files("m")
    assert files[0].name == "part-00000000.parquet"  # old-style parts first in their day
    assert len(files) == len(paths) + 1
    assert files == sorted(
        files,
        key=lambda f: (f.parent.name, f.name.rsplit("-", 1)[0], int(f.name[-16:-8])),
    )
    assert files == LabeledStore(tmp_path).files("m")  # deterministic for every reader


def _retention(root: str, w: int, start: Any, out: Any) -> None:
    """Expire old days while another writer publishes late rows into them."""
    store = LabeledStore(Path(root), retention_days=1, max_buffer_rows=1)
    start.wait(60)
    for b in range(20):
        store.append("m", rows(T0 + np.arange(3.0) + b, f"late{w}-{b}-", seed=b))
        store.apply_retention(T0 + 10 * DAY)
    out.put(w)


def test_concurrent_retention_and_late_writes_do_not_fail(tmp_path: Path) -> None:
    seed = LabeledStore(tmp_path)
    for d in range(5):  # days 15..19, all expired at day 25
        seed.append("m", rows(T0 + d * DAY + np.arange(10.0), f"d{d}-"))
    seed.append("m", rows(T0 + 9.5 * DAY + np.arange(10.0), "keep-"))  # day 24: kept
    seed.flush()
    in_flight = (
        tmp_path / "model=m" / f"date={day_of(T0 + DAY)}" / ".part-x-1-aa-00000000.parquet.tmp"
    )
    in_flight.write_bytes(b"PAR1 another writer, now")

    ctx = mp.get_context("spawn")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_retention, args=(str(tmp_path), w, start, out)) for w in range(3)]
    for p in procs:
        p.start()
    start.set()
    assert sorted(out.get(timeout=240) for _ in procs) == [0, 1, 2]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0

    assert in_flight.exists()  # a young temp file is never retention's to delete
    final = LabeledStore(tmp_path, retention_days=1)
    final.apply_retention(T0 + 10 * DAY)
    assert final.files("m", None, T0 + 9 * DAY) == []  # every expired part is gone
    assert final.scan("m").column("id").to_pylist() == [f"keep-{i}" for i in range(10)]
    assert final.days("m") == [day_of(T0 + DAY), day_of(T0 + 9.5 * DAY)]  # held by in_flight


def test_write_into_a_day_another_writer_just_expired(tmp_path: Path) -> None:
    a = LabeledStore(tmp_path, max_buffer_rows=1)
    a.append("m", rows(T0 + np.arange(3.0), "a0-"))
    b = LabeledStore(tmp_path, retention_days=1)
    assert len(b.apply_retention(T0 + 5 * DAY)) == 1  # the directory ``a`` knows is gone
    a.append("m", rows(T0 + np.arange(3.0), "a1-"))  # ``a`` creates it again
    assert a.scan("m").column("id").to_pylist() == ["a1-0", "a1-1", "a1-2"]
    assert b.apply_retention(T0 + 5 * DAY) == [tmp_path / "model=m" / f"date={day_of(T0)}"]
    assert b.apply_retention(T0 + 5 * DAY) == []


def test_reader_lists_again_when_a_listed_part_vanishes(tmp_path: Path) -> None:
    store = LabeledStore(tmp_path, max_buffer_rows=1)
    for d in range(2):
        store.append("m", rows(T0 + d * DAY + np.arange(4.0), f"d{d}-"))

    class Racing(LabeledStore):
        """A reader whose first listing is overtaken by another process's retention."""

        raced = False

        def files(
            self, model: str, start: float | None = None, end: float | None = None
        ) -> list[Path]:
            listed = super().files(model, start, end)
            if not self.raced:
                self.raced = True
                LabeledStore(self.root, retention_days=1).apply_retention(T0 + 2 * DAY)
            return listed

    assert Racing(tmp_path).scan("m").column("id").to_pylist() == [f"d1-{i}" for i in range(4)]
    assert Racing(tmp_path).last("m", 2).num_rows == 4


def test_snapshot_does_not_depend_on_which_writer_wrote_a_repeat(tmp_path: Path) -> None:
    """A replay by another writer may repeat (ts, id) with other content; the kept row is chosen
    by content, not by file order, so swapping the writers' rows keeps the hash."""
    base = rows(T0 + np.arange(200.0), "r")
    replay = dataclasses.replace(base, label=1.0 - base.label, label_ts=base.label_ts + 60)
    hashes = set()
    for case, (first, second) in enumerate([(base, replay), (replay, base)]):
        root = tmp_path / f"store{case}"
        for token, part in (("a-1-000000000000", first), ("b-1-000000000000", second)):
            store = LabeledStore(root)
            store._writer = token  # fix the file order: writer "a" is listed first
            store.append("m", part)
            store.flush()
        snap = make_snapshot(LabeledStore(root), SnapshotSpec("m", TimeRange(0, 2e9)), root / "s")
        assert snap.manifest["row_count"] == 200
        hashes.add(snap.sha256)
    assert len(hashes) == 1


@pytest.mark.parametrize("token", ["host-1-abcdef012345", "h-0-000000000000", "12345678-9-0a1b"])
def test_part_names_parse_back(tmp_path: Path, token: str) -> None:
    store = LabeledStore(tmp_path)
    store._writer = token
    store.append("m", rows(T0 + np.arange(2.0), "x"))
    (p,) = store.flush()
    assert p.name == f"part-{token}-00000000.parquet"
    assert store.files("m") == [p]
