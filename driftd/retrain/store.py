"""The labeled event store: joined rows (features, prediction, label, version, ts) as Parquet.

Layout (hive partitioning, one writer per root)::

    root/model=<name>/date=YYYY-MM-DD/part-<seq:08d>.parquet

``date`` is the UTC day of the prediction's event time. ``seq`` increases monotonically within a
partition (the next one is the largest finished part plus one), so file names are deterministic
and a file, once published, never changes. A part is written to ``.part-<seq>.parquet.tmp`` in
the same directory, fsynced, then renamed over its final name (atomic) and the directory is
fsynced: after a kill -9, readers see whole files or nothing; leftover temp files are ignored by
``scan`` and removed by the next write to that partition.

Categorical features (and versions) are stored as dictionary-encoded strings, not as the
daemon's int32 codes: those codes index per-process vocabularies, so only the strings keep a
row meaningful after a restart, in another process, or in a snapshot a year later.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

NUM_PREFIX = "num."  # numeric feature columns: ``num.<feature>``
CAT_PREFIX = "cat."  # categorical feature columns: ``cat.<feature>``
OTHER_VALUE = "__other__"  # what the daemon's OTHER code (a category beyond the cap) is stored as
DAY_S = 86_400
BASE_FIELDS = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("ts", pa.float64(), nullable=False),
    pa.field("label_ts", pa.float64()),
    pa.field("version", pa.dictionary(pa.int32(), pa.string())),
    pa.field("prediction", pa.float64()),
    pa.field("score", pa.float64()),
    pa.field("label", pa.float64()),
)
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_PART = re.compile(r"^part-(\d{8,})\.parquet$")
_DATE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def _dictionary(codes: I32, values: Sequence[str]) -> pa.DictionaryArray:
    """Daemon codes (-1 missing, -2 beyond the cap) as a dictionary-encoded string column."""
    codes = np.asarray(codes, dtype=np.int32)
    if codes.size and (codes.min() < -2 or codes.max() >= len(values)):
        raise ValueError(f"category code out of range for a vocabulary of {len(values)}")
    idx = np.where(codes == -2, np.int32(len(values)), codes)
    indices = pa.array(idx, type=pa.int32(), mask=codes == -1)
    return pa.DictionaryArray.from_arrays(indices, pa.array([*values, OTHER_VALUE], pa.string()))


@dataclass(frozen=True, slots=True)
class LabeledRows:
    """Joined rows of one model as columns; codes are resolved through the given vocabularies."""

    ids: Sequence[str]
    ts: F64  # the prediction's event time, seconds
    label_ts: F64
    version: I32  # codes into ``version_names``
    version_names: Sequence[str]
    numeric: F64  # (n, len(numeric_names)), NaN when missing
    numeric_names: Sequence[str]
    categorical: I32  # (n, len(categorical_names)), daemon codes
    categorical_names: Sequence[str]
    categorical_vocabs: Sequence[Sequence[str]]  # one vocabulary per categorical column
    prediction: F64
    score: F64  # NaN when absent
    label: F64

    def __len__(self) -> int:
        return len(self.ids)

    def to_table(self) -> pa.Table:
        """The rows as an Arrow table in the store's schema (numeric columns zero-copy)."""
        n = len(self.ids)
        if self.numeric.shape != (n, len(self.numeric_names)):
            raise ValueError(f"numeric is {self.numeric.shape}, expected ({n}, names)")
        if self.categorical.shape != (n, len(self.categorical_names)):
            raise ValueError(f"categorical is {self.categorical.shape}, expected ({n}, names)")
        if len(self.categorical_vocabs) != len(self.categorical_names):
            raise ValueError("one vocabulary per categorical column is needed")
        cols: list[pa.Array] = [
            pa.array(self.ids, pa.string()),
            pa.array(np.asarray(self.ts, np.float64)),
            pa.array(np.asarray(self.label_ts, np.float64)),
            _dictionary(self.version, self.version_names),
            pa.array(np.asarray(self.prediction, np.float64)),
            pa.array(np.asarray(self.score, np.float64)),
            pa.array(np.asarray(self.label, np.float64)),
        ]
        fields = list(BASE_FIELDS)
        numeric_t = np.ascontiguousarray(np.asarray(self.numeric, np.float64).T)
        for name, col in zip(self.numeric_names, numeric_t, strict=True):
            fields.append(pa.field(NUM_PREFIX + name, pa.float64()))
            cols.append(pa.array(col))
        for j, (name, vocab) in enumerate(
            zip(self.categorical_names, self.categorical_vocabs, strict=True)
        ):
            fields.append(pa.field(CAT_PREFIX + name, pa.dictionary(pa.int32(), pa.string())))
            cols.append(_dictionary(self.categorical[:, j], vocab))
        return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def day_of(ts: float) -> str:
    """The UTC day (``YYYY-MM-DD``) of an event time, the store's partition key."""
    return dt.datetime.fromtimestamp(ts // DAY_S * DAY_S, dt.UTC).strftime("%Y-%m-%d")


def _day_start(day: str) -> float:
    return dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` via ``.<name>.tmp`` beside it: fsync, rename over, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LabeledStore:
    """Appends labeled rows per model, buffered, as crash-safe Parquet parts; scans by time."""

    def __init__(
        self,
        root: Path,
        *,
        retention_days: float | None = None,
        max_buffer_rows: int = 65_536,
        max_buffer_age_s: float = 60.0,
        row_group_size: int = 131_072,
        compression: str = "zstd",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.retention_days = retention_days
        self.max_buffer_rows = max_buffer_rows
        self.max_buffer_age_s = max_buffer_age_s
        self.row_group_size = row_group_size
        self.compression = compression
        self._clock = clock
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._next_seq: dict[Path, int] = {}

    def model_dir(self, model: str) -> Path:
        """The directory of one model's partitions."""
        if not _NAME.match(model):
            raise ValueError(f"model name {model!r} is not a safe path component")
        return self.root / f"model={model}"

    def append(self, model: str, rows: LabeledRows | pa.Table) -> list[Path]:
        """Buffer rows; flush the model when its buffer is large or old. Returns written parts."""
        table = rows.to_table() if isinstance(rows, LabeledRows) else rows
        self.model_dir(model)  # validates the name before anything is buffered
        if table.num_rows:
            self._buffers.setdefault(model, []).append(table)
            self._buffered[model] = self._buffered.get(model, 0) + table.num_rows
            self._since.setdefault(model, self._clock())
        return self.maybe_flush(model)

    def maybe_flush(self, model: str | None = None) -> list[Path]:
        """Flush the buffers (of one model, or all) that reached the size or age limit."""
        now = self._clock()
        written: list[Path] = []
        for m in [model] if model is not None else list(self._buffers):
            if m in self._buffers and (
                self._buffered[m] >= self.max_buffer_rows
                or now - self._since[m] >= self.max_buffer_age_s
            ):
                written += self._flush_model(m)
        return written

    def flush(self) -> list[Path]:
        """Write every buffered row now, one part per (model, day)."""
        written: list[Path] = []
        for m in list(self._buffers):
            written += self._flush_model(m)
        return written

    @property
    def buffered_rows(self) -> int:
        """Rows appended but not yet written."""
        return sum(self._buffered.values())

    def _flush_model(self, model: str) -> list[Path]:
        tables = self._buffers.pop(model)
        self._buffered.pop(model)
        self._since.pop(model)
        table = pa.concat_tables(tables, promote_options="permissive")
        days = np.floor(table.column("ts").to_numpy() / DAY_S).astype(np.int64)
        written = []
        unique = np.unique(days).tolist()
        for day in unique:
            part = table.filter(pa.array(days == day)) if len(unique) > 1 else table
            written.append(self._write_part(model, day_of(day * DAY_S), part))
        return written

    def _write_part(self, model: str, day: str, table: pa.Table) -> Path:
        """Publish one part atomically: temp file, fsync, rename, fsync the directory."""
        part_dir = self.model_dir(model) / f"date={day}"
        seq = self._next_seq.get(part_dir)
        if seq is None:
            part_dir.mkdir(parents=True, exist_ok=True)
            seqs = [-1]
            for p in part_dir.iterdir():
                if (m := _PART.match(p.name)) is not None:
                    seqs.append(int(m.group(1)))
                elif p.name.endswith(".tmp"):
                    p.unlink()  # left by a crashed writer; never published
            seq = max(seqs) + 1
        final = part_dir / f"part-{seq:08d}.parquet"
        atomic_write(
            final,
            lambda f: pq.write_table(
                table, f, row_group_size=self.row_group_size, compression=self.compression
            ),
        )
        self._next_seq[part_dir] = seq + 1
        return final

    def days(self, model: str) -> list[str]:
        """The model's day partitions, oldest first."""
        d = self.model_dir(model)
        if not d.is_dir():
            return []
        return sorted(m.group(1) for p in d.iterdir() if (m := _DATE.match(p.name)))

    def files(self, model: str, start: float | None = None, end: float | None = None) -> list[Path]:
        """Published parts whose day overlaps ``[start, end)``, in (day, seq) order."""
        out: list[Path] = []
        for day in self.days(model):
            lo = _day_start(day)
            if (start is not None and lo + DAY_S <= start) or (end is not None and lo >= end):
                continue  # partition pruning
            d = self.model_dir(model) / f"date={day}"
            parts = [(int(m.group(1)), p) for p in d.iterdir() if (m := _PART.match(p.name))]
            out += [p for _, p in sorted(parts)]
        return out

    def scan(self, model: str, start: float | None = None, end: float | None = None) -> pa.Table:
        """The model's rows with ``start <= ts < end`` (either bound optional), in file order."""
        return self._read(self.files(model, start, end), start, end)

    def last(self, model: str, n: int, end: float | None = None) -> pa.Table:
        """At least the ``n`` latest rows with ``ts < end``, reading day partitions newest first."""
        files = self.files(model, None, end)
        tables: list[pa.Table] = []
        rows = 0
        while files and rows < n:
            day_files = [f for f in files if f.parent == files[-1].parent]
            files = files[: len(files) - len(day_files)]
            tables.insert(0, self._read(day_files, None, end))
            rows += tables[0].num_rows
        if not tables:
            return self._read([], None, end)
        return pa.concat_tables(tables, promote_options="permissive")

    def _read(self, files: Sequence[Path], start: float | None, end: float | None) -> pa.Table:
        if not files:
            return pa.schema(BASE_FIELDS).empty_table()
        schema = pa.unify_schemas([pq.read_schema(f) for f in files])
        dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
        cond = None
        if start is not None:
            cond = ds.field("ts") >= start
        if end is not None:
            cond = ds.field("ts") < end if cond is None else cond & (ds.field("ts") < end)
        return dataset.to_table(filter=cond)

    def apply_retention(self, now: float) -> list[Path]:
        """Delete whole day partitions that ended at least ``retention_days`` before ``now``."""
        if self.retention_days is None or not self.root.is_dir():
            return []
        cutoff = now - self.retention_days * DAY_S
        removed: list[Path] = []
        for mdir in sorted(self.root.glob("model=*")):
            model = mdir.name.removeprefix("model=")
            for day in self.days(model):
                if _day_start(day) + DAY_S <= cutoff:
                    path = mdir / f"date={day}"
                    shutil.rmtree(path)
                    self._next_seq.pop(path, None)
                    removed.append(path)
        return removed
