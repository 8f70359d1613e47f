"""Partition summaries: what each partition reports to the leader with every checkpoint.

Per model and event-time bucket (``floor(ts / bucket_s)``) a summary holds

- each detector stream's values (see ``streams``) per version, with their event times (a
  prediction's time for ``score``, ``latency`` and ``feature:*``; the label's time for
  ``error``), and
- the per-version counts the rollout reads (``VersionCounts``): predictions in the bucket of
  their time, joined labels in the bucket of the label's time.

Merging is concatenation and addition, so what the leader holds for a bucket depends on the
events, not on how they were partitioned. Within a bucket the leader feeds a detector its
values ordered by (event time, a stable hash of the event id, value): a total order in which
the only ties are equal values, so the sequence is the same whatever the partitioning, and
events stamped with the same time come in an order that has nothing to do with their values
(ordering ties by value would turn a stream of 0s and 1s into runs). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.contracts.columns import F64
from driftd.contracts.monitor import DriftDetected, MonitorBatch
from driftd.daemon import state_codec
from driftd.daemon.streams import (
    ROW_GROUPS,
    SEGMENT,
    U32,
    category_labels,
    segment_labels,
    stable_keys,
    stream_values,
)
from driftd.rollout.counts import VersionCounts

STATE_KIND = "driftd.summary"
STATE_VERSION = 1
_EMPTY = np.empty(0)


class BucketSummary:
    """One model's events in one event-time bucket: stream values per version, and counts."""

    def __init__(self, task: str) -> None:
        self.counts = VersionCounts(task)
        # (version, stream) -> chunks of (event times, id keys, values), in arrival order
        self.values: dict[tuple[str, str], list[tuple[F64, U32, F64]]] = {}
        self.labels: dict[int, str] = {}  # segment or category key -> its name
        self.type_errors = 0  # predictions dead-lettered for a feature of the wrong type

    def __len__(self) -> int:
        return sum(len(c[0]) for chunks in self.values.values() for c in chunks)

    def add(self, version: str, stream: str, ts: F64, keys: U32, vals: F64) -> None:
        """Append one stream's values of one version, with their times and id keys."""
        if len(ts):
            self.values.setdefault((version, stream), []).append((ts, keys, vals))

    def merge(self, other: BucketSummary) -> None:
        """Add another partition's (or report's) summary of the same bucket."""
        self.counts.merge(other.counts)
        self.labels.update(other.labels)
        self.type_errors += other.type_errors
        for key, chunks in other.values.items():
            self.values.setdefault(key, []).extend(chunks)

    def ordered(self, version: str, stream: str) -> tuple[F64, F64]:
        """The values of one stream and version in (event time, id key, value) order, with
        their times: the same sequence whatever the partitioning."""
        chunks = self.values.get((version, stream))
        if not chunks:
            return _EMPTY, _EMPTY
        ts, keys, vals = (np.concatenate([c[k] for c in chunks]) for k in range(3))
        order = np.lexsort((vals, keys, ts))
        return ts[order], vals[order]

    def rows(self, names: Sequence[str]) -> tuple[U32, F64, F64]:
        """(id keys, event times, values (rows, features)) of the ``col:`` streams of
        ``names``, every version pooled: the columns of one version share their rows."""
        streams = [f"col:{n}" for n in names]
        parts = [self.version_rows(v, streams) for v in self.versions()]
        return (
            np.concatenate([np.empty(0, np.uint32), *(p[0] for p in parts)]),
            np.concatenate([_EMPTY, *(p[1] for p in parts)]),
            np.concatenate([np.empty((0, len(names))), *(p[2] for p in parts)]),
        )

    def version_rows(self, version: str, streams: Sequence[str]) -> tuple[U32, F64, F64]:
        """(id keys, times, values (rows, streams)) of one version's aligned ``streams`` (of
        one row group: ``pcol:`` or ``jcol:``); empty when it has none."""
        chunks = [self.values.get((version, s)) for s in streams]
        if any(c is None for c in chunks) or not streams:
            return np.empty(0, np.uint32), _EMPTY, np.empty((0, len(streams)))
        first = chunks[0]
        assert first is not None
        ts = np.concatenate([c[0] for c in first])
        keys = np.concatenate([c[1] for c in first])
        vals = np.column_stack([np.concatenate([c[2] for c in ch or ()]) for ch in chunks])
        return keys, ts, vals

    def versions(self) -> list[str]:
        """The versions with any values, sorted."""
        return sorted({v for v, _ in self.values})

    def trim(self, cap: int) -> None:
        """Keep at most ``cap`` rows of each version's row-group streams (``col:``, ``pcol:``,
        ``jcol:``): those with the smallest (id key, event time), the same rows in every
        column of a group."""
        for key, chunks in self.values.items():
            if not key[1].startswith(ROW_GROUPS) or sum(len(c[0]) for c in chunks) <= cap:
                continue
            ts, keys, vals = (np.concatenate([c[k] for c in chunks]) for k in range(3))
            keep = np.lexsort((ts, keys))[:cap]
            keep.sort()  # arrival order: every column of the version keeps the same rows
            self.values[key] = [(ts[keep], keys[keep], vals[keep])]

    def streams(self) -> list[tuple[str, str]]:
        """(version, stream) pairs with values, sorted."""
        return sorted(self.values)

    def state_dict(self) -> dict[str, Any]:
        """Counts and each stream's values, chunks joined."""
        vals = []
        for (version, stream), chunks in sorted(self.values.items()):
            ts, keys, vs = (np.concatenate([c[k] for c in chunks]) for k in range(3))
            vals.append([version, stream, ts, keys, vs])
        labels = [[k, v] for k, v in sorted(self.labels.items())]
        return {
            "counts": self.counts.state_dict(),
            "values": vals,
            "labels": labels,
            "type_errors": self.type_errors,
        }

    @classmethod
    def from_state(cls, task: str, state: Mapping[str, Any]) -> BucketSummary:
        """The inverse of ``state_dict``."""
        b = cls(task)
        b.counts.load_state_dict(state["counts"])
        b.labels = {int(k): str(v) for k, v in state.get("labels", [])}
        b.type_errors = int(state.get("type_errors", 0))
        for version, stream, ts, keys, vs in state["values"]:
            b.add(
                str(version),
                str(stream),
                np.asarray(ts, np.float64),
                np.asarray(keys, np.uint32),
                np.asarray(vs, np.float64),
            )
        return b


class ModelSummarizer:
    """A partition's ``Monitor`` that buffers one model's buckets until the next checkpoint."""

    def __init__(
        self,
        task: str,
        streams: Iterable[str],
        numeric_names: Sequence[str],
        bucket_s: float,
        sample_rows: int = 0,
    ) -> None:
        self.task = task
        self.streams = sorted(set(streams))
        self.sample_rows = sample_rows  # the window checks' cap on col: rows per bucket
        self.numeric_names = list(numeric_names)
        self.bucket_s = bucket_s
        self.buckets: dict[int, BucketSummary] = {}

    def _bucket(self, b: int) -> BucketSummary:
        got = self.buckets.get(b)
        if got is None:
            got = self.buckets[b] = BucketSummary(self.task)
        return got

    def _index(self, ts: F64) -> npt.NDArray[np.int64]:
        return np.floor(ts / self.bucket_s).astype(np.int64)

    def update(self, batch: MonitorBatch) -> Sequence[DriftDetected]:
        """Add the batch's counts and stream values to their buckets; never alarms."""
        self._counts(batch)
        keys: dict[bool, U32] = {}  # id keys of the joined rows (True) or the predictions
        for stream in self.streams:
            got = stream_values(batch, stream, self.task, self.numeric_names)
            if got is None or not len(got[1]):
                continue
            codes, vals, ts, rows = got
            joined = stream == "error" or stream.startswith("jcol:")
            if joined not in keys:
                j = batch.joined
                ids = j.ids if joined and j is not None else batch.predictions.ids
                keys[joined] = stable_keys(ids)
            k = keys[joined][rows]
            idx = self._index(ts)
            if stream.startswith("col:"):  # names of segments and categories, by key
                name = stream[4:]
                labels = segment_labels(batch) if name == SEGMENT else category_labels(batch, name)
                for b in np.unique(idx).tolist() if labels else ():
                    self._bucket(b).labels.update(labels)
            for b, code in sorted(set(zip(idx.tolist(), codes.tolist(), strict=True))):
                sel = (idx == b) & (codes == code)
                self._bucket(b).add(batch.versions[code], stream, ts[sel], k[sel], vals[sel])
        return ()

    def _counts(self, batch: MonitorBatch) -> None:
        p, j = batch.predictions, batch.joined
        pidx = self._index(p.ts) if len(p) else np.empty(0, np.int64)
        jidx = self._index(j.label_ts) if j is not None and len(j) else np.empty(0, np.int64)
        for b in np.union1d(pidx, jidx).tolist():
            ps = np.flatnonzero(pidx == b)
            js = np.flatnonzero(jidx == b)
            sub = replace(
                batch,
                predictions=p if len(ps) == len(p) else p.take(ps),
                joined=None if j is None or not len(js) else j.take(js),
                expired_versions=np.empty(0, np.int32),
            )
            self._bucket(b).counts.update(sub)

    def add_type_errors(self, ts: F64) -> None:
        """Count predictions dead-lettered for a feature of the wrong type, by event time."""
        for b, n in zip(*np.unique(self._index(ts), return_counts=True), strict=True):
            self._bucket(int(b)).type_errors += int(n)

    def bucket_state(self, b: int) -> dict[str, Any]:
        """One bucket's state for a report, its window-check rows sampled down first."""
        if self.sample_rows:
            self.buckets[b].trim(self.sample_rows)
        return self.buckets[b].state_dict()

    def clear(self) -> None:
        """Forget the buffered buckets (after they were saved in a report)."""
        self.buckets = {}

    def state_dict(self) -> dict[str, Any]:
        """Nothing: the buffer is emptied into a report at every checkpoint."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore (see ``state_dict``)."""


def encode(models: Mapping[str, ModelSummarizer]) -> bytes:
    """A report's data: each model's buffered buckets."""
    return state_codec.dumps(
        STATE_KIND,
        STATE_VERSION,
        {
            name: [[b, s.bucket_state(b)] for b in sorted(s.buckets)]
            for name, s in models.items()
            if s.buckets
        },
    )


def decode(data: bytes, tasks: Mapping[str, str]) -> Iterator[tuple[str, int, BucketSummary]]:
    """(model, bucket, summary) of a report's data; models no longer configured are skipped."""
    state = state_codec.loads(data, STATE_KIND, STATE_VERSION)
    for name, buckets in state.items():
        task = tasks.get(name)
        if task is None:
            continue
        for b, bs in buckets:
            yield name, int(b), BucketSummary.from_state(task, bs)
