"""The labeled event store: partitioning, buffering, scans, retention and crash safety."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from driftd.retrain.store import OTHER_VALUE, LabeledRows, LabeledStore, day_of

DAY = 86_400.0
T0 = 1_700_006_400.0  # 2023-11-15T00:00:00Z


def rows(ts: np.ndarray, seed: int = 0, prefix: str = "r") -> LabeledRows:
    """Rows at the given times with random features; ids are unique per prefix."""
    n = len(ts)
    rng = np.random.default_rng(seed)
    return LabeledRows(
        ids=[f"{prefix}{i}" for i in range(n)],
        ts=np.asarray(ts, np.float64),
        label_ts=np.asarray(ts, np.float64) + 1.0,
        version=rng.integers(0, 2, n).astype(np.int32),
        version_names=["v1", "v2"],
        numeric=rng.normal(size=(n, 3)),
        numeric_names=["a", "b", "c"],
        categorical=rng.integers(-2, 3, (n, 1)).astype(np.int32),
        categorical_names=["color"],
        categorical_vocabs=[["red", "green", "blue"]],
        prediction=rng.random(n),
        score=np.full(n, np.nan),
        label=rng.integers(0, 2, n).astype(np.float64),
    )


def test_append_flush_scan_roundtrip(tmp_path: Path) -> None:
    ts = T0 + np.arange(10) * (DAY / 4)  # 2.5 days
    r = rows(ts)
    store = LabeledStore(tmp_path)
    assert store.append("fraud", r) == []  # buffered
    assert store.buffered_rows == 10
    written = store.flush()
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        f"model=fraud/date={day}/part-{store.writer}-00000000.parquet"
        for day in ("2023-11-15", "2023-11-16", "2023-11-17")
    ]
    assert store.buffered_rows == 0
    table = store.scan("fraud")
    assert table.num_rows == 10
    np.testing.assert_array_equal(table.column("ts").to_numpy(), ts)
    np.testing.assert_array_equal(
        np.stack([table.column(f"num.{c}").to_numpy() for c in "abc"], axis=1), r.numeric
    )
    colors = table.column("cat.color").to_pylist()
    expected = [
        None if c == -1 else OTHER_VALUE if c == -2 else ["red", "green", "blue"][c]
        for c in r.categorical[:, 0]
    ]
    assert colors == expected
    assert table.column("version").to_pylist() == [["v1", "v2"][v] for v in r.version]
    window = store.scan("fraud", T0 + DAY / 4, T0 + DAY)  # [start, end)
    np.testing.assert_array_equal(window.column("ts").to_numpy(), ts[1:4])
    assert [p.parent.name for p in store.files("fraud", T0 + DAY, T0 + DAY + 1)] == [
        "date=2023-11-16"
    ]
    assert store.scan("other").num_rows == 0


def test_buffer_flushes_by_size_and_age_with_increasing_sequence(tmp_path: Path) -> None:
    now = [0.0]
    store = LabeledStore(tmp_path, max_buffer_rows=25, max_buffer_age_s=10, clock=lambda: now[0])
    for k in range(2):
        assert store.append("m", rows(T0 + np.arange(10.0), prefix=f"a{k}")) == []
    written = store.append("m", rows(T0 + np.arange(10.0), prefix="a2"))  # 30 >= 25
    assert [p.name for p in written] == [f"part-{store.writer}-00000000.parquet"]
    assert pq.read_metadata(written[0]).num_rows == 30
    assert store.append("m", rows(T0 + np.arange(5.0), prefix="b")) == []
    now[0] = 11.0
    assert [p.name for p in store.maybe_flush()] == [f"part-{store.writer}-00000001.parquet"]
    # A new writer on the same root has its own token and sequence: nothing is overwritten.
    again = LabeledStore(tmp_path)
    assert again.writer != store.writer
    again.append("m", rows(T0 + np.arange(3.0), prefix="c"))
    assert [p.name for p in again.flush()] == [f"part-{again.writer}-00000000.parquet"]
    assert again.scan("m").num_rows == 38
    assert len(again.files("m")) == 3


def test_last_n_reads_newest_days(tmp_path: Path) -> None:
    store = LabeledStore(tmp_path)
    store.append("m", rows(T0 + np.arange(6) * (DAY / 2)))
    store.flush()
    last = store.last("m", 3)
    assert last.num_rows >= 3
    assert set(T0 + np.arange(3, 6) * (DAY / 2)) <= set(last.column("ts").to_pylist())
    assert store.last("m", 3, end=T0 + DAY).column("ts").to_pylist() == [T0, T0 + DAY / 2]


def test_retention_deletes_exactly_the_old_days(tmp_path: Path) -> None:
    store = LabeledStore(tmp_path, retention_days=2)
    store.append("m", rows(T0 + np.arange(5) * DAY + 3600))  # days 15..19
    store.append("n", rows(T0 + np.arange(5) * DAY + 3600))
    store.flush()
    now = T0 + 4 * DAY + 7200  # 19th, 02:00; cutoff: 17th, 02:00
    removed = store.apply_retention(now)
    # Days 15 and 16 ended before the cutoff; 17 holds rows younger than two days.
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == [
        f"model={m}/date=2023-11-{d}" for m in "mn" for d in (15, 16)
    ]
    assert store.days("m") == ["2023-11-17", "2023-11-18", "2023-11-19"]
    assert store.apply_retention(now) == []
    assert LabeledStore(tmp_path).apply_retention(now + 100 * DAY) == []  # no limit: keep all


def test_leftover_temp_file_is_ignored_and_cleaned_once_stale(tmp_path: Path) -> None:
    store = LabeledStore(tmp_path)
    store.append("m", rows(T0 + np.arange(4.0)))
    store.flush()
    part_dir = tmp_path / "model=m" / f"date={day_of(T0)}"
    half = part_dir / ".part-00000001.parquet.tmp"
    half.write_bytes(b"PAR1 half a file, the writer was killed here")
    assert store.scan("m").num_rows == 4
    fresh = LabeledStore(tmp_path)  # a restarted writer
    fresh.append("m", rows(T0 + np.arange(2.0), prefix="x"))
    assert [p.name for p in fresh.flush()] == [f"part-{fresh.writer}-00000000.parquet"]
    assert half.exists()  # young: it may be another writer's part being written
    old = time.time() - 2 * fresh.stale_tmp_s
    os.utime(half, (old, old))
    later = LabeledStore(tmp_path)
    later.append("m", rows(T0 + np.arange(1.0), prefix="y"))
    later.flush()
    assert not half.exists()  # stale: a crashed writer's
    assert later.scan("m").num_rows == 7


_WRITER = """
import sys, numpy as np
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_store import rows, T0
from driftd.retrain.store import LabeledStore
store = LabeledStore(Path(sys.argv[1]), max_buffer_rows=1)
for k in range(100000):
    store.append("m", rows(T0 + np.arange(2000.0), seed=k, prefix=f"{k}-"))
"""


def test_kill_9_mid_write_leaves_only_whole_files(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), str(Path(__file__).parent)],
        env=os.environ | {"PYTHONPATH": os.getcwd()},
    )
    part_dir = tmp_path / "model=m" / f"date={day_of(T0)}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(list(part_dir.glob("part-*"))) < 5:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    table = LabeledStore(tmp_path).scan("m")
    assert table.num_rows >= 5 * 2000
    assert table.num_rows % 2000 == 0


def test_rejects_unsafe_model_names_and_bad_codes(tmp_path: Path) -> None:
    store = LabeledStore(tmp_path)
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="safe path"):
            store.append(bad, rows(T0 + np.arange(2.0)))
    r = rows(T0 + np.arange(2.0))
    bad_codes = dataclasses.replace(r, version=np.array([0, 7], np.int32))
    with pytest.raises(ValueError, match="out of range"):
        store.append("m", bad_codes)
