"""The labeled event store: joined rows (features, prediction, label, version, ts) as Parquet.

Layout (hive partitioning; any number of writer processes may share one root)::

    root/model=<name>/date=YYYY-MM-DD/part-<writer>-<seq:08d>.parquet

``date`` is the UTC day of the prediction's event time. ``writer`` is a token unique to one
``LabeledStore`` instance in one process (``<host>-<pid>-<12 random hex>``, made anew after a
fork) and ``seq`` counts that writer's parts in the partition from 0. A writer never lists the
directory to pick a name, so writers on several hosts (one consumer group, the store on a
ReadWriteMany volume) never pick the same one, and a file, once published, never changes. A
part is written to ``.part-<writer>-<seq:08d>.parquet.tmp`` in the same directory, fsynced,
then renamed over its final name (atomic) and the directory is fsynced: after a kill -9,
readers see whole files or nothing. Parts of stores written before writer tokens existed,
``part-<seq:08d>.parquet``, are read as before.

With several writers on one root it is guaranteed that:

* every published row is read back exactly once by a scan that starts after it was published
  (no writer overwrites, renames or deletes another writer's part, except retention);
* readers list every writer's parts in one deterministic order: by day, then writer token
  (old-style parts first), then sequence, whatever process lists them;
* a temp file is deleted only by its own writer or, as a crashed writer's leftover, once it is
  older than ``stale_tmp_s`` (default an hour; by mtime, so clocks may differ by less than
  that), by the first write of any writer to that partition or by retention: a temp file that
  another writer is still writing is never removed;
* retention (``apply_retention``) deletes a day's parts file by file and removes the directory
  only when it is empty; several writers may run it at once. A writer that publishes into a
  day while another expires it keeps its part until the next retention pass (its rows are past
  the retention anyway); a writer whose directory vanishes mid-write writes again; a reader
  whose listed part vanishes lists again.

The order of rows within a day across writers carries no meaning: snapshots sort rows by
(ts, id) and choose among repeats by content (``driftd.retrain.snapshot``), so a snapshot's
hash does not depend on which writer wrote which rows.

Categorical features (and versions) are stored as dictionary-encoded strings, not as the
daemon's int32 codes: those codes index per-process vocabularies, so only the strings keep a
row meaningful after a restart, in another process, or in a snapshot a year later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import re
import secrets
import shutil
import socket
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
_PART = re.compile(r"^part-(?:(?P<writer>[A-Za-z0-9._-]+)-)?(?P<seq>\d{8,})\.parquet$")
_TMP_SUFFIX = ".tmp"
_RETRIES = 3  # attempts of a write or a read whose directory or file vanished meanwhile
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


def writer_token() -> str:
    """A new writer token, ``<host>-<pid>-<12 random hex>``: unique across hosts and restarts."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:64].strip(".") or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(6)}"


def _part_key(name: str) -> tuple[str, int, str] | None:
    """The order of a part within its day (writer, seq, name); None for anything else."""
    if (m := _PART.match(name)) is None:
        return None
    return (m.group("writer") or "", int(m.group("seq")), name)


def _relisting(read: Callable[[], pa.Table]) -> pa.Table:
    """``read()``, again (listing anew) when a listed part was removed by retention meanwhile."""
    for _ in range(_RETRIES - 1):
        try:
            return read()
        except FileNotFoundError:
            continue
    return read()


def _day_start(day: str) -> float:
    return dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` via ``.<name>.tmp`` beside it: fsync, rename over, fsync the directory."""
    tmp = path.with_name(f".{path.name}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LabeledStore:
    """Appends labeled rows per model, buffered, as crash-safe Parquet parts; scans by time.

    Any number of instances, in any number of processes and hosts, may write to one root.
    """

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
        stale_tmp_s: float = 3600.0,
    ) -> None:
        self.root = Path(root)
        self.retention_days = retention_days
        self.max_buffer_rows = max_buffer_rows
        self.max_buffer_age_s = max_buffer_age_s
        self.row_group_size = row_group_size
        self.compression = compression
        self._clock = clock
        self.stale_tmp_s = stale_tmp_s  # a foreign temp file this old is a crashed writer's
        self._pid = os.getpid()
        self._writer = writer_token()
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
    def writer(self) -> str:
        """This writer's token, in its part names (a forked child gets a new one)."""
        if os.getpid() != self._pid:
            self._pid, self._writer = os.getpid(), writer_token()
            self._next_seq.clear()
        return self._writer

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
        writer = self.writer
        seq = self._next_seq.get(part_dir)
        if seq is None:
            part_dir.mkdir(parents=True, exist_ok=True)
            self._clean_tmp(part_dir)
            seq = 0
        for attempt in range(_RETRIES):
            final = part_dir / f"part-{writer}-{seq:08d}.parquet"
            while final.exists():  # never overwrite a part (the token makes this unreachable)
                seq += 1
                final = part_dir / f"part-{writer}-{seq:08d}.parquet"
            try:
                atomic_write(
                    final,
                    lambda f: pq.write_table(
                        table, f, row_group_size=self.row_group_size, compression=self.compression
                    ),
                )
                break
            except FileNotFoundError:  # another writer's retention removed the directory
                if attempt == _RETRIES - 1:
                    raise
                part_dir.mkdir(parents=True, exist_ok=True)
        self._next_seq[part_dir] = seq + 1
        return final

    def _is_stale_or_own_tmp(self, entry: os.DirEntry[str], now: float) -> bool:
        """A temp file this writer may delete: its own, or one older than ``stale_tmp_s``."""
        if entry.name.startswith(f".part-{self.writer}-"):
            return True
        try:
            return now - entry.stat(follow_symlinks=False).st_mtime > self.stale_tmp_s
        except FileNotFoundError:
            return False  # published or removed meanwhile

    def _clean_tmp(self, part_dir: Path) -> list[Path]:
        """Delete this writer's own and stale (crashed writers') temp files in one partition."""
        removed: list[Path] = []
        now = time.time()
        try:
            entries = list(os.scandir(part_dir))
        except FileNotFoundError:
            return removed
        for e in entries:
            if e.name.endswith(_TMP_SUFFIX) and self._is_stale_or_own_tmp(e, now):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
        return removed

    def days(self, model: str) -> list[str]:
        """The model's day partitions, oldest first."""
        d = self.model_dir(model)
        if not d.is_dir():
            return []
        return sorted(m.group(1) for p in d.iterdir() if (m := _DATE.match(p.name)))

    def files(self, model: str, start: float | None = None, end: float | None = None) -> list[Path]:
        """Published parts (of every writer) whose day overlaps ``[start, end)``, in (day,
        writer, seq) order; old-style ``part-<seq>`` parts come first in their day."""
        out: list[Path] = []
        for day in self.days(model):
            lo = _day_start(day)
            if (start is not None and lo + DAY_S <= start) or (end is not None and lo >= end):
                continue  # partition pruning
            d = self.model_dir(model) / f"date={day}"
            try:
                names = os.listdir(d)
            except FileNotFoundError:  # removed by retention since ``days``
                continue
            parts = sorted(k for n in names if (k := _part_key(n)) is not None)
            out += [d / name for _, _, name in parts]
        return out

    def scan(self, model: str, start: float | None = None, end: float | None = None) -> pa.Table:
        """The model's rows with ``start <= ts < end`` (either bound optional), in file order."""
        return _relisting(lambda: self._read(self.files(model, start, end), start, end))

    def last(self, model: str, n: int, end: float | None = None) -> pa.Table:
        """At least the ``n`` latest rows with ``ts < end``, reading day partitions newest first."""
        return _relisting(lambda: self._last(model, n, end))

    def _last(self, model: str, n: int, end: float | None) -> pa.Table:
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
        """Delete the day partitions that ended at least ``retention_days`` before ``now``.

        Safe with several writers (see the module docstring): parts are deleted one by one,
        a temp file only when it is this writer's or stale, the directory once it is empty.
        Returns the expired day directories found.
        """
        if self.retention_days is None or not self.root.is_dir():
            return []
        cutoff = now - self.retention_days * DAY_S
        removed: list[Path] = []
        for mdir in sorted(self.root.glob("model=*")):
            model = mdir.name.removeprefix("model=")
            for day in self.days(model):
                if _day_start(day) + DAY_S <= cutoff:
                    path = mdir / f"date={day}"
                    if self._remove_day(path):
                        removed.append(path)
                    self._next_seq.pop(path, None)
        return removed

    def _remove_day(self, path: Path) -> bool:
        """Delete one expired day; False when another process removed it first."""
        now = time.time()
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            return False
        for e in entries:
            if e.name.endswith(_TMP_SUFFIX) and not self._is_stale_or_own_tmp(e, now):
                continue  # another writer is writing it now
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
                continue
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass  # another process's retention got there first
            except OSError as err:
                if err.errno != errno.EBUSY:  # EBUSY: an NFS silly-renamed file still open
                    raise
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            # Not empty: a writer published or is writing into it now; the next pass removes it.
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                raise
        return True
