"""Dataset snapshots: a window of the labeled store, split by time, content-hashed, on disk.

A snapshot directory holds ``train.parquet``, ``validation.parquet``, ``holdout.parquet`` and
``manifest.json`` (written last, atomically: a directory without it is incomplete). Rows are
sorted by (ts, id), exact (ts, id) repeats from at-least-once replays are dropped, and the split
is time-ordered: no ts value falls in two splits, so the holdout lies strictly after training.
Of rows that repeat a (ts, id) with different content (a replay by another writer, say), the
one that sorts first over all columns (in column order) is kept: the selection never depends on
the order of the store's files or of rows within them, so neither on which of several writers
wrote which rows.

The content hash (``driftd.retrain.content_hash``) is independent of Parquet encoding,
compression, row groups and chunking. ``created_at`` and source file names are recorded but
never hashed.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftd.errors import DriftdError
from driftd.retrain.content_hash import HASH_SCHEME, canonical_type, content_sha256, dataset_sha256
from driftd.retrain.store import CAT_PREFIX, NUM_PREFIX, LabeledStore, atomic_write

Split = Literal["train", "validation", "holdout"]
SPLITS: tuple[Split, ...] = ("train", "validation", "holdout")
FORMAT = "driftd-snapshot/1"
MANIFEST = "manifest.json"


class EmptyWindow(DriftdError, ValueError):
    """A snapshot's window selects no labeled rows: nothing to train on (one line, exit 1)."""


class SnapshotIntegrityError(DriftdError):
    """A snapshot's content does not match its manifest (or the manifest is unreadable)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Rows with ``start <= ts < end``."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class LastN:
    """The ``n`` latest rows with ``ts < end`` (``end`` None: everything stored so far)."""

    n: int
    end: float | None = None


@dataclass(frozen=True, slots=True)
class SinceAlarm:
    """Rows from an alarm's time on: ``ts >= ts_alarm`` (and ``< end`` when given)."""

    ts: float
    end: float | None = None


Window = TimeRange | LastN | SinceAlarm


@dataclass(frozen=True, slots=True)
class SnapshotSpec:
    """Which rows of which model, and how to split them (fractions of rows, in time order)."""

    model: str
    window: Window
    train: float = 0.7
    validation: float = 0.15
    holdout: float = 0.15

    def __post_init__(self) -> None:
        fracs = (self.train, self.validation, self.holdout)
        if min(fracs) < 0 or abs(sum(fracs) - 1.0) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fracs}")


class DatasetRecord(TypedDict):
    """The plain fields of a registry Dataset (table ``registry_datasets``)."""

    sha256: str
    row_count: int
    window_start: float | None
    window_end: float | None
    source_offsets: dict[str, list[str]]
    schema: list[dict[str, str]]
    uri: str


@dataclass(frozen=True, slots=True)
class TrainingArrays:
    """One split as numpy arrays for a trainer; categorical codes index ``vocabularies``."""

    numeric: npt.NDArray[np.float32]  # (n, len(numeric_names)), NaN when missing
    categorical: npt.NDArray[np.int32]  # (n, len(categorical_names)), -1 when missing
    label: npt.NDArray[np.float32]
    ts: npt.NDArray[np.float64]
    numeric_names: list[str]
    categorical_names: list[str]
    vocabularies: list[list[str]]


def _boundary(ts: npt.NDArray[np.float64], b: int) -> int:
    """Move a split boundary to the nearer end of a run of equal ts (earlier end on a tie)."""
    if b <= 0 or b >= len(ts) or ts[b - 1] != ts[b]:
        return b
    lo = int(np.searchsorted(ts, ts[b], "left"))
    hi = int(np.searchsorted(ts, ts[b], "right"))
    return lo if b - lo <= hi - b else hi


def split_bounds(ts: npt.NDArray[np.float64], spec: SnapshotSpec) -> tuple[int, int]:
    """End rows of train and validation in time-sorted ``ts``; no ts value straddles them."""
    n = len(ts)
    b1 = _boundary(ts, min(n, round(n * spec.train)))
    b2 = _boundary(ts, min(n, max(b1, round(n * (spec.train + spec.validation)))))
    return b1, max(b1, b2)


def _drop_repeats(table: pa.Table) -> pa.Table:
    """Keep one row per (ts, id) of a table sorted by (ts, id): the first over all columns."""
    n = table.num_rows
    if n <= 1:
        return table
    ids, ts = table.column("id"), table.column("ts")
    same = pc.and_(
        pc.equal(ids.slice(1), ids.slice(0, n - 1)), pc.equal(ts.slice(1), ts.slice(0, n - 1))
    )
    repeat = np.asarray(pc.fill_null(same, False).to_numpy(zero_copy_only=False), bool)
    if not repeat.any():
        return table
    grouped = np.zeros(n, bool)  # rows of a (ts, id) that occurs more than once
    grouped[1:] |= repeat
    grouped[:-1] |= repeat
    rows = np.flatnonzero(grouped)
    sub = table.take(pa.array(rows))
    keys = pa.table(
        {
            f"{j}": col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            for j, col in enumerate(sub.columns)
        }
    )
    first = [table.column_names.index("ts"), table.column_names.index("id")]
    order = [*first, *(j for j in range(sub.num_columns) if j not in first)]
    idx = pc.sort_indices(keys, [(f"{j}", "ascending") for j in order]).to_numpy()
    s_ids = sub.column("id").take(pa.array(idx))
    s_ts = sub.column("ts").take(pa.array(idx))
    m = len(idx)
    head = np.ones(m, bool)  # the first row of each (ts, id) in content order
    head[1:] = ~np.asarray(
        pc.and_(
            pc.equal(s_ids.slice(1), s_ids.slice(0, m - 1)),
            pc.equal(s_ts.slice(1), s_ts.slice(0, m - 1)),
        ).to_numpy(zero_copy_only=False),
        bool,
    )
    keep = ~grouped
    keep[rows[idx[head]]] = True
    return table.filter(pa.array(keep))


def select(store: LabeledStore, spec: SnapshotSpec) -> pa.Table:
    """The window's rows sorted by (ts, id), exact (ts, id) repeats dropped (see the module)."""
    w = spec.window
    if isinstance(w, TimeRange):
        table = store.scan(spec.model, w.start, w.end)
    elif isinstance(w, SinceAlarm):
        table = store.scan(spec.model, w.ts, w.end)
    else:
        table = store.last(spec.model, w.n, w.end)
    table = table.take(pc.sort_indices(table, [("ts", "ascending"), ("id", "ascending")]))
    table = _drop_repeats(table)
    if isinstance(w, LastN):
        table = table.slice(max(0, table.num_rows - w.n))
    return table


def _window(w: Window, ts: npt.NDArray[np.float64]) -> dict[str, Any]:
    if isinstance(w, TimeRange):
        return {"kind": "time_range", "start": w.start, "end": w.end}
    end = w.end if w.end is not None else float(ts[-1])
    if isinstance(w, LastN):
        return {"kind": "last_n", "n": w.n, "start": float(ts[0]), "end": end}
    return {"kind": "since", "ts": w.ts, "start": w.ts, "end": end}


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot: its manifest and its splits as Arrow tables."""

    path: Path
    manifest: dict[str, Any]
    tables: dict[str, pa.Table] = field(repr=False)

    @property
    def sha256(self) -> str:
        """The dataset hash (hex)."""
        return str(self.manifest["sha256"])

    @property
    def short_digest(self) -> str:
        """The first 8 hex digits of the dataset hash, for display only (never compare these)."""
        return self.sha256[:8]

    def arrays(self, split: Split) -> TrainingArrays:
        """One split as float32 features, stable categorical codes and float32 labels."""
        table = self.tables[split]
        names = table.column_names
        num = [c for c in names if c.startswith(NUM_PREFIX)]
        cat = [c for c in names if c.startswith(CAT_PREFIX)]
        vocabs: list[list[str]] = [self.manifest["vocabularies"][c] for c in cat]
        n = table.num_rows
        numeric = np.empty((n, len(num)), np.float32)
        for j, c in enumerate(num):
            numeric[:, j] = _column(table.column(c))
        categorical = np.empty((n, len(cat)), np.int32)
        for j, (c, vocab) in enumerate(zip(cat, vocabs, strict=True)):
            categorical[:, j] = _codes(table.column(c), pa.array(vocab, pa.string()))
        return TrainingArrays(
            numeric=numeric,
            categorical=categorical,
            label=_column(table.column("label")).astype(np.float32),
            ts=_column(table.column("ts")),
            numeric_names=[c.removeprefix(NUM_PREFIX) for c in num],
            categorical_names=[c.removeprefix(CAT_PREFIX) for c in cat],
            vocabularies=vocabs,
        )

    def dataset_record(self) -> DatasetRecord:
        """What the registry records for this snapshot's Dataset."""
        m = self.manifest
        return DatasetRecord(
            sha256=m["sha256"],
            row_count=m["row_count"],
            window_start=m["window"]["start"],
            window_end=m["window"]["end"],
            source_offsets={"files": list(m["sources"])},
            schema=list(m["schema"]),
            uri=self.path.resolve().as_uri(),
        )


def _column(col: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    """A float column as numpy (zero-copy for one null-free chunk); nulls become NaN."""
    if col.num_chunks == 1:
        return np.asarray(col.chunk(0).to_numpy(zero_copy_only=False), np.float64)
    return np.asarray(col.to_numpy(), np.float64)


def _codes(col: pa.ChunkedArray, vocab: pa.Array) -> npt.NDArray[np.int32]:
    """Codes of a string column in ``vocab`` (-1: missing or unknown), through its dictionary."""
    out = []
    for chunk in col.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_encode()
        mapping = pc.fill_null(pc.index_in(chunk.dictionary, value_set=vocab), -1)
        lut = np.append(np.asarray(mapping.to_numpy(), np.int32), np.int32(-1))
        idx = pc.fill_null(chunk.indices, len(chunk.dictionary)).to_numpy()
        out.append(lut[idx])
    return np.concatenate(out) if out else np.empty(0, np.int32)


def make_snapshot(
    store: LabeledStore, spec: SnapshotSpec, out_dir: Path, *, compression: str = "lz4"
) -> Snapshot:
    """Select, sort, split, write the splits and then the manifest; return the snapshot."""
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists():
        raise FileExistsError(f"{out_dir} already holds a snapshot")
    table = select(store, spec)
    if table.num_rows == 0:
        raise EmptyWindow(f"the window {spec.window} of model {spec.model!r} selects no rows")
    ts = table.column("ts").to_numpy()
    b1, b2 = split_bounds(ts, spec)
    parts = (table.slice(0, b1), table.slice(b1, b2 - b1), table.slice(b2))
    tables = dict(zip(SPLITS, parts, strict=True))
    out_dir.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    for name, t in tables.items():
        path = out_dir / f"{name}.parquet"
        atomic_write(path, functools.partial(pq.write_table, t, compression=compression))
        span = t.column("ts").to_numpy()
        splits[name] = {
            "file": path.name,
            "rows": t.num_rows,
            "sha256": content_sha256(t),
            "ts_min": float(span[0]) if len(span) else None,
            "ts_max": float(span[-1]) if len(span) else None,
        }
    cats = [c for c in table.column_names if c.startswith(CAT_PREFIX)]
    sources = store.files(spec.model, float(ts[0]), float(np.nextafter(ts[-1], np.inf)))
    manifest = {
        "format": FORMAT,
        "hash_scheme": HASH_SCHEME,
        "model": spec.model,
        "window": _window(spec.window, ts),
        "fractions": {"train": spec.train, "validation": spec.validation, "holdout": spec.holdout},
        "schema": [{"name": f.name, "type": canonical_type(f.type)} for f in table.schema],
        "vocabularies": {
            c: sorted(pc.unique(table.column(c).cast(pa.string())).drop_null().to_pylist())
            for c in cats
        },
        "row_count": table.num_rows,
        "splits": splits,
        "sha256": dataset_sha256([(s, splits[s]["sha256"]) for s in SPLITS]),
        "sources": [p.relative_to(store.root).as_posix() for p in sources],
        "created_at": time.time(),
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    atomic_write(out_dir / MANIFEST, lambda f: f.write(body))
    return Snapshot(out_dir, manifest, tables)


def load_snapshot(path: Path, *, verify: bool = True) -> Snapshot:
    """Read a snapshot; with ``verify``, recompute every split's hash against the manifest."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("hash_scheme") != HASH_SCHEME:
            raise SnapshotIntegrityError(f"{path}: unknown snapshot format or hash scheme")
        entries = {s: manifest["splits"][s] for s in SPLITS}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SnapshotIntegrityError(f"{path}: unreadable manifest: {e}") from e
    tables: dict[str, pa.Table] = {}
    for name, entry in entries.items():
        try:
            table = pq.read_table(path / entry["file"], memory_map=True)
        except (OSError, pa.ArrowException) as e:
            raise SnapshotIntegrityError(f"{path}: split {name!r} is unreadable: {e}") from e
        if verify:
            got = content_sha256(table)
            if got != entry["sha256"] or table.num_rows != entry["rows"]:
                raise SnapshotIntegrityError(
                    f"{path}: split {name!r} content does not match the manifest "
                    f"(sha256 {got}, {table.num_rows} rows; manifest says "
                    f"{entry['sha256']}, {entry['rows']} rows)"
                )
        tables[name] = table
    expected = dataset_sha256([(s, entries[s]["sha256"]) for s in SPLITS])
    if verify and manifest["sha256"] != expected:
        raise SnapshotIntegrityError(f"{path}: dataset sha256 does not match its split hashes")
    return Snapshot(path, manifest, tables)
