"""Labels that arrived before their prediction, waiting for it in arrival order (FIFO).

Part of the join (``join.JoinStore``): a label waits until its prediction arrives within the
model's label delay, or until the watermark passes its time (then it counts as unmatched).
Bounded: past ``max_pending`` the oldest waiting labels are evicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.contracts.columns import F64, LabelColumns


class WaitingLabels:
    """Waiting labels by id: (event time, label), oldest first (dicts keep insertion order)."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.by_id: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, cols: LabelColumns, rows: npt.NDArray[np.intp]) -> tuple[int, int]:
        """Queue the labels at ``rows`` in order; return (duplicates, evicted): an id already
        waiting is a duplicate, and past ``max_pending`` the oldest are evicted."""
        labels = self.by_id
        ts, lv = cols.ts, cols.label
        duplicates = 0
        for r in rows.tolist():
            id_ = cols.ids[r]
            if id_ in labels:
                duplicates += 1
            else:
                labels[id_] = (float(ts[r]), float(lv[r]))
        over = len(labels) - self.max_pending
        if over <= 0:
            return duplicates, 0
        for id_ in list(labels)[:over]:
            del labels[id_]
        return duplicates, over

    def claim(
        self, ids: Sequence[str], ts: F64, rows: list[int], max_delay: float
    ) -> list[tuple[int, float, float]]:
        """The labels of the predictions at ``rows`` (id ``ids[r]``, made at ``ts[r]``) that
        came at most ``max_delay`` after them, as (index into rows, label time, label); they
        leave the queue."""
        labels = self.by_id
        out = []
        for k, r in enumerate(rows):
            got = labels.get(ids[r])
            if got is not None and got[0] - ts[r] <= max_delay:
                del labels[ids[r]]
                out.append((k, got[0], got[1]))
        return out

    def expire(self, watermark: float) -> int:
        """Drop the labels from before ``watermark`` (FIFO); return how many: unmatched."""
        labels = self.by_id
        gone = []
        for id_, (lt, _) in labels.items():
            if lt >= watermark:
                break
            gone.append(id_)
        for id_ in gone:
            del labels[id_]
        return len(gone)

    def state_dict(self) -> dict[str, Any]:
        """Ids, times and labels, oldest first."""
        return {
            "label_ids": list(self.by_id),
            "label_ts": np.array([v[0] for v in self.by_id.values()], dtype=np.float64),
            "label_values": np.array([v[1] for v in self.by_id.values()], dtype=np.float64),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict()."""
        self.by_id = {
            i: (float(t), float(v))
            for i, t, v in zip(
                state["label_ids"],
                state["label_ts"].tolist(),
                state["label_values"].tolist(),
                strict=True,
            )
        }
