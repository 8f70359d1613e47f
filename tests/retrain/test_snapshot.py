"""Dataset snapshots: content hashes, time-ordered splits, manifests and their verification."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.retrain.snapshot import (
    LastN,
    SinceAlarm,
    Snapshot,
    SnapshotIntegrityError,
    SnapshotSpec,
    TimeRange,
    content_sha256,
    load_snapshot,
    make_snapshot,
    split_bounds,
)
from driftd.retrain.store import LabeledRows, LabeledStore

DAY = 86_400.0
T0 = 1_700_006_400.0  # 2023-11-15T00:00:00Z
N = 600
ALL = TimeRange(0.0, 2e9)


def rows(n: int = N, seed: int = 0) -> LabeledRows:
    """n rows over three days, some sharing a timestamp, with missing values of each kind."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.floor(rng.uniform(0, 3 * DAY, n) / 600) * 600  # many ties
    numeric = rng.normal(size=(n, 4))
    numeric[rng.random((n, 4)) < 0.05] = np.nan
    return LabeledRows(
        ids=[f"id{i:05d}" for i in range(n)],
        ts=ts,
        label_ts=ts + 30,
        version=rng.integers(0, 2, n).astype(np.int32),
        version_names=["v1", "v2"],
        numeric=numeric,
        numeric_names=["a", "b", "c", "d"],
        categorical=rng.integers(-1, 3, (n, 2)).astype(np.int32),
        categorical_names=["color", "size"],
        categorical_vocabs=[["red", "green", "blue"], ["s", "m", "l"]],
        prediction=rng.random(n),
        score=rng.random(n),
        label=rng.integers(0, 2, n).astype(np.float64),
    )


def take(r: LabeledRows, idx: np.ndarray) -> LabeledRows:
    """The rows at ``idx``, in that order."""
    out = {
        f.name: getattr(r, f.name)[idx]
        for f in dataclasses.fields(r)
        if isinstance(getattr(r, f.name), np.ndarray)
    }
    return dataclasses.replace(r, ids=[r.ids[i] for i in idx], **out)


def stored(root: Path, r: LabeledRows, chunks: int = 1, row_group: int = 10_000) -> LabeledStore:
    """A store holding ``r``, appended in ``chunks`` flushes with the given row-group size."""
    store = LabeledStore(root, row_group_size=row_group, compression="snappy")
    for idx in np.array_split(np.arange(len(r)), chunks):
        store.append("m", take(r, idx))
        store.flush()
    return store


def snap(
    tmp: Path, name: str, r: LabeledRows, spec: SnapshotSpec | None = None, **kw: int
) -> Snapshot:
    return make_snapshot(
        stored(tmp / f"store-{name}", r, **kw), spec or SnapshotSpec("m", ALL), tmp / name
    )


def split_hashes(s: Snapshot) -> list[str]:
    return [s.manifest["splits"][k]["sha256"] for k in ("train", "validation", "holdout")]


def test_same_window_same_hash_whatever_the_chunking_and_order(tmp_path: Path) -> None:
    r = rows()
    a = snap(tmp_path, "a", r)
    rng = np.random.default_rng(1)
    b = snap(tmp_path, "b", take(r, rng.permutation(N)), chunks=7, row_group=13)
    c = snap(tmp_path, "c", take(r, np.arange(N)[::-1]), chunks=2, row_group=50)
    assert a.sha256 == b.sha256 == c.sha256
    assert split_hashes(a) == split_hashes(b) == split_hashes(c)
    assert a.manifest["sources"] != b.manifest["sources"]  # recorded, not hashed
    again = make_snapshot(stored(tmp_path / "store-a2", r), SnapshotSpec("m", ALL), tmp_path / "a2")
    assert again.sha256 == a.sha256
    assert a.short_digest == a.sha256[:8]
    assert load_snapshot(tmp_path / "b").sha256 == a.sha256


@pytest.mark.parametrize("edit", ["numeric", "nan", "categorical", "label", "ts", "id"])
def test_one_changed_value_changes_the_hash(tmp_path: Path, edit: str) -> None:
    r = rows()
    base = snap(tmp_path, "base", r)
    i = 123
    if edit in ("numeric", "nan"):
        numeric = r.numeric.copy()
        numeric[i, 2] = np.nan if edit == "nan" and not np.isnan(numeric[i, 2]) else 0.5
        changed = dataclasses.replace(r, numeric=numeric)
    elif edit == "categorical":
        cat = r.categorical.copy()
        cat[i, 1] = (cat[i, 1] + 2) % 3
        changed = dataclasses.replace(r, categorical=cat)
    elif edit == "label":
        changed = dataclasses.replace(r, label=np.where(np.arange(N) == i, 1 - r.label, r.label))
    elif edit == "ts":
        changed = dataclasses.replace(r, ts=np.where(np.arange(N) == i, r.ts + 0.001, r.ts))
    else:
        changed = dataclasses.replace(r, ids=[*r.ids[:i], "other", *r.ids[i + 1 :]])
    other = snap(tmp_path, "other", changed)
    assert other.sha256 != base.sha256
    assert sum(x != y for x, y in zip(split_hashes(base), split_hashes(other), strict=True)) >= 1


def test_split_is_time_ordered_with_ties_moved_off_the_boundary(tmp_path: Path) -> None:
    ts = np.repeat(np.arange(10.0), 10)  # ten ties of ten: 70 % lands inside the run at 7
    spec = SnapshotSpec("m", ALL, 0.65, 0.2, 0.15)
    b1, b2 = split_bounds(ts, spec)
    assert (b1, b2) == (60, 80)  # 65 -> 60 (nearer end, earlier on a tie), 85 -> 80
    r = dataclasses.replace(rows(100), ts=T0 + ts)
    s = snap(tmp_path, "s", r, spec)
    parts = {k: s.tables[k].column("ts").to_numpy() for k in ("train", "validation", "holdout")}
    assert [len(p) for p in parts.values()] == [60, 20, 20]
    assert parts["train"].max() < parts["validation"].min() <= parts["validation"].max()
    assert parts["validation"].max() < parts["holdout"].min()
    assert not set(parts["train"]) & set(parts["holdout"])
    all_same = np.zeros(10)
    assert split_bounds(all_same, spec) == (10, 10)  # one run is never split: nearer end wins
    within = pa.concat_tables([s.tables[k] for k in ("train", "validation", "holdout")])
    keys = list(zip(within.column("ts").to_pylist(), within.column("id").to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_windows_last_n_and_since_alarm(tmp_path: Path) -> None:
    r = rows()
    store = stored(tmp_path / "store", r)
    order = np.lexsort((np.array(r.ids), r.ts))
    last = make_snapshot(store, SnapshotSpec("m", LastN(100)), tmp_path / "last")
    assert last.manifest["row_count"] == 100
    assert last.tables["holdout"].column("id").to_pylist()[-1] == r.ids[order[-1]]
    alarm = float(r.ts[order[300]])
    since = make_snapshot(store, SnapshotSpec("m", SinceAlarm(alarm)), tmp_path / "since")
    assert since.manifest["row_count"] == int((r.ts >= alarm).sum())
    assert since.dataset_record()["window_start"] == alarm
    with pytest.raises(ValueError, match="selects no rows"):
        make_snapshot(store, SnapshotSpec("m", TimeRange(0, 1)), tmp_path / "empty")
    with pytest.raises(FileExistsError):
        make_snapshot(store, SnapshotSpec("m", LastN(5)), tmp_path / "last")


def test_replayed_duplicates_are_dropped(tmp_path: Path) -> None:
    r = rows()
    twice = take(r, np.concatenate([np.arange(N), np.arange(200, 260)]))
    assert snap(tmp_path, "a", r).sha256 == snap(tmp_path, "b", twice).sha256


def test_manifest_and_content_tampering_fail_naming_the_split(tmp_path: Path) -> None:
    snap(tmp_path, "s", rows())
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["splits"]["holdout"]["sha256"] = "0" * 64
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotIntegrityError, match="split 'holdout'"):
        load_snapshot(tmp_path / "s")
    t = snap(tmp_path, "t", rows())
    train = t.tables["train"]
    label = train.column("label").to_numpy().copy()
    label[5] = 1 - label[5]
    edited = train.set_column(train.schema.get_field_index("label"), "label", pa.array(label))
    pq.write_table(edited, tmp_path / "t" / "train.parquet")
    with pytest.raises(SnapshotIntegrityError, match="split 'train'"):
        load_snapshot(tmp_path / "t")
    assert load_snapshot(tmp_path / "t", verify=False).tables["train"].num_rows == train.num_rows
    (tmp_path / "t" / "validation.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(SnapshotIntegrityError, match="split 'validation'"):
        load_snapshot(tmp_path / "t", verify=False)


def test_arrays_and_dataset_record(tmp_path: Path) -> None:
    r = rows()
    s = load_snapshot(snap(tmp_path, "s", r).path)
    a = s.arrays("train")
    n = s.manifest["splits"]["train"]["rows"]
    assert a.numeric.shape == (n, 4) and a.numeric.dtype == np.float32
    assert a.categorical.shape == (n, 2) and a.categorical.dtype == np.int32
    assert a.label.dtype == np.float32 and a.ts.dtype == np.float64
    assert a.vocabularies == [["blue", "green", "red"], ["l", "m", "s"]]  # sorted: stable
    colors = s.tables["train"].column("cat.color").to_pylist()
    assert [None if c < 0 else a.vocabularies[0][c] for c in a.categorical[:, 0]] == colors
    by_id = {k: i for i, k in enumerate(r.ids)}
    idx = [by_id[k] for k in s.tables["train"].column("id").to_pylist()]
    np.testing.assert_array_equal(a.numeric, r.numeric[idx].astype(np.float32))
    rec = s.dataset_record()
    assert rec["sha256"] == s.sha256 and rec["row_count"] == N
    assert (rec["window_start"], rec["window_end"]) == (0.0, 2e9)
    assert rec["uri"].startswith("file://") and rec["source_offsets"]["files"]
    assert [f["name"] for f in rec["schema"]][:2] == ["id", "ts"]
    assert {"name": "cat.color", "type": "string"} in rec["schema"]


# -- the canonical hash itself -------------------------------------------------------------------

_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64))
_strs = st.one_of(st.none(), st.text(max_size=5))


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(1, 30))
    f = draw(st.lists(_floats, min_size=n, max_size=n))
    i = draw(st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=n, max_size=n))
    s = draw(st.lists(_strs, min_size=n, max_size=n))
    d = draw(st.lists(st.sampled_from([None, "x", "y", "zz"]), min_size=n, max_size=n))
    return pa.table(
        {
            "f": pa.array(f, pa.float64()),
            "i": pa.array(i, pa.int64()),
            "s": pa.array(s, pa.string()),
            "d": pa.array(d, pa.string()).dictionary_encode(),
        }
    )


def _rechunk(table: pa.Table, cuts: list[int]) -> pa.Table:
    bounds = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    pieces = [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    # Re-encode each piece so that dictionaries and buffers differ between chunks.
    return pa.concat_tables([pa.Table.from_pylist(p.to_pylist(), p.schema) for p in pieces])


def _edited(col: str, v: object) -> object:
    """A different value for one cell (null to value, value to another value)."""
    if col == "f":
        return 0.5 if v != 0.5 else 1.5  # NaN and None compare unequal to 0.5
    if col == "i":
        return 0 if v is None else int(v) + 1  # type: ignore[call-overload]
    if col == "s":
        return "x" if v is None else f"{v}!"
    return "y" if v == "x" else "x"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.lists(st.integers(0, 40), max_size=5), st.data())
def test_canonical_hash_ignores_chunking_and_sees_every_cell(
    table: pa.Table, cuts: list[int], data: st.DataObject
) -> None:
    digest = content_sha256(table)
    assert content_sha256(_rechunk(table, cuts)) == digest
    col = data.draw(st.sampled_from(table.column_names))
    row = data.draw(st.integers(0, table.num_rows - 1))
    values = table.column(col).to_pylist()
    values[row] = _edited(col, values[row])
    typ = table.schema.field(col).type
    arr = pa.array(values, pa.string()).dictionary_encode() if col == "d" else pa.array(values, typ)
    edited = table.set_column(table.schema.get_field_index(col), col, arr)
    assert content_sha256(edited) != digest
    assert content_sha256(table.rename_columns([*table.column_names[:-1], "e"])) != digest
