"""The labeled event store's sink: joined rows out of the loop, into Parquet.

Rows are buffered by the store and flushed before every checkpoint, so a checkpoint never
covers rows that are not on disk. A crash after a flush and before its checkpoint replays those
rows; snapshots drop exact (ts, id) repeats, so the replay does not change a dataset.
Retention is in event time (see ``flush``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from driftd.contracts.monitor import MonitorBatch
from driftd.retrain.store import LabeledRows, LabeledStore


class LabeledSink:
    """Appends each batch's joined rows to the ``LabeledStore``."""

    def __init__(
        self,
        store: LabeledStore,
        models: Sequence[str],
        on_rows: Callable[[str, int], None] | None = None,
    ) -> None:
        self.store = store
        self.models = frozenset(models)  # only models that are retrained are stored
        self.on_rows = on_rows
        self.rows = 0
        self.max_ts = float("-inf")  # the newest event time stored: retention's "now"
        self._retention_at = float("-inf")

    def write(self, labeled: Sequence[tuple[MonitorBatch, list[list[str]]]]) -> None:
        """Append the joined rows of each batch (codes resolved by the batch's vocabularies)."""
        for batch, vocabs in labeled:
            j = batch.joined
            if j is None or not len(j) or batch.model not in self.models:
                continue
            self.store.append(
                batch.model,
                LabeledRows(
                    ids=j.ids,
                    ts=j.ts,
                    label_ts=j.label_ts,
                    version=j.version,
                    version_names=list(batch.versions),
                    numeric=j.numeric,
                    numeric_names=list(batch.numeric_names),
                    categorical=j.categorical,
                    categorical_names=list(batch.categorical_names),
                    categorical_vocabs=vocabs,
                    prediction=j.prediction,
                    score=j.score,
                    label=j.label,
                ),
            )
            self.rows += len(j)
            self.max_ts = max(self.max_ts, float(j.ts.max()))
            if self.on_rows is not None:
                self.on_rows(batch.model, len(j))

    def flush(self) -> None:
        """Write every buffered row to disk (called before each checkpoint); drop the day
        partitions past the retention, at most once an hour of wall time.

        Retention counts in event time, from the newest row stored, like every window in
        driftd: a replay of last year's stream keeps its last ``retention_days`` of data.
        """
        self.store.flush()
        now = time.monotonic()
        if self.max_ts > float("-inf") and now - self._retention_at >= 3600:
            self._retention_at = now
            self.store.apply_retention(self.max_ts)
