"""The operational monitor: per-version windowed counts, latency and error rates.

Windows are tumbling in event time (``window_s``); the last ``windows_kept`` are kept.
Detector-based monitors (drift, quality) plug into the same ``Monitor`` interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftd.contracts.columns import F64
from driftd.contracts.monitor import DriftDetected, MonitorBatch

# Columns of a window's per-version table.
FIELDS = ("predictions", "errors", "latency_count", "latency_sum", "joined", "expired")
_P, _E, _LC, _LS, _J, _X = range(len(FIELDS))
# Latency histogram bucket upper bounds, in milliseconds (the last is +Inf).
LATENCY_BUCKETS_MS = np.array([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, np.inf])


class OperationalMonitor:
    """Counts, error rate and latency per model version over event-time windows."""

    def __init__(self, window_s: float, windows_kept: int) -> None:
        self.window_s = window_s
        self.windows_kept = windows_kept
        self.late_events = 0
        # window index -> (table (versions x FIELDS), latency histogram (versions x buckets))
        self._windows: dict[int, tuple[F64, F64]] = {}

    def _table(self, w: int, n_versions: int) -> tuple[F64, F64]:
        cur = self._windows.get(w)
        if cur is None:
            cur = (
                np.zeros((n_versions, len(FIELDS))),
                np.zeros((n_versions, len(LATENCY_BUCKETS_MS))),
            )
        elif cur[0].shape[0] < n_versions:
            pad = n_versions - cur[0].shape[0]
            cur = (np.pad(cur[0], ((0, pad), (0, 0))), np.pad(cur[1], ((0, pad), (0, 0))))
        self._windows[w] = cur
        return cur

    def _add(
        self,
        ts: F64,
        version: np.ndarray[Any, Any],
        n_versions: int,
        col: int,
        weights: F64 | None = None,
    ) -> None:
        if not len(ts):
            return
        widx = np.floor(ts / self.window_s).astype(np.int64)
        for w in np.unique(widx).tolist():
            sel = widx == w
            table, _ = self._table(w, n_versions)
            wts = None if weights is None else weights[sel]
            table[:, col] += np.bincount(version[sel], weights=wts, minlength=n_versions)

    def update(self, batch: MonitorBatch) -> Sequence[DriftDetected]:
        """Add the batch's predictions, errors, latencies, joins and expiries."""
        nv = len(batch.versions)
        p = batch.predictions
        if len(p):
            self._add(p.ts, p.version, nv, _P)
            self._add(p.ts, p.version, nv, _E, p.error.astype(np.float64))
            has = ~np.isnan(p.latency_ms)
            if has.any():
                ts, ver, lat = p.ts[has], p.version[has], p.latency_ms[has]
                self._add(ts, ver, nv, _LC)
                self._add(ts, ver, nv, _LS, lat)
                bucket = np.searchsorted(LATENCY_BUCKETS_MS, lat, side="left")
                widx = np.floor(ts / self.window_s).astype(np.int64)
                for w in np.unique(widx).tolist():
                    sel = widx == w
                    _, hist = self._table(w, nv)
                    np.add.at(hist, (ver[sel], bucket[sel]), 1.0)
        if batch.joined is not None and len(batch.joined):
            self._add(batch.joined.ts, batch.joined.version, nv, _J)
        if len(batch.expired_versions):
            # Expired predictions are counted in the newest window.
            w = max(self._windows) if self._windows else 0
            table, _ = self._table(w, nv)
            table[:, _X] += np.bincount(batch.expired_versions, minlength=nv)[: table.shape[0]]
        self._prune()
        return ()

    def _prune(self) -> None:
        if len(self._windows) > self.windows_kept:
            for w in sorted(self._windows)[: len(self._windows) - self.windows_kept]:
                del self._windows[w]

    def snapshot(self) -> dict[int, dict[str, F64]]:
        """Window start index -> per-version columns (a copy, for exporters)."""
        out: dict[int, dict[str, F64]] = {}
        for w, (table, hist) in sorted(self._windows.items()):
            cols = {name: table[:, i].copy() for i, name in enumerate(FIELDS)}
            cols["latency_hist"] = hist.copy()
            out[w] = cols
        return out

    def state_dict(self) -> dict[str, Any]:
        """Windows as arrays."""
        ws = sorted(self._windows)
        return {
            "windows": ws,
            "tables": [self._windows[w][0] for w in ws],
            "hists": [self._windows[w][1] for w in ws],
            "late_events": self.late_events,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore windows from state_dict()."""
        self._windows = {
            int(w): (np.array(t, dtype=np.float64), np.array(h, dtype=np.float64))
            for w, t, h in zip(state["windows"], state["tables"], state["hists"], strict=True)
        }
        self.late_events = int(state["late_events"])
