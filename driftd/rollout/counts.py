"""Per-version cumulative counts for canary analysis, kept as pipeline state.

``VersionCounts`` is a pipeline ``Monitor``: it is checkpointed with the partition's offsets,
so after a crash the counts are exactly those of the events the checkpoint covers and the
replayed events are counted once. The rollout controller reads the sums over partitions and
subtracts the baseline it recorded when the canary started. Latency is kept as a fine
log-spaced histogram so that any threshold (the champion's p99, an SLO ceiling) can be applied
afterwards; a threshold is snapped to the bucket edge at or above it, which can only count
fewer requests as slow (conservative for a rollback).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.config.slo import LATENCY_BUCKETS_S
from driftd.contracts.monitor import DriftDetected, MonitorBatch
from driftd.contracts.versioning import require_state_version
from driftd.rollout.evidence import ArmCounts

STATE_KIND, STATE_VERSION = "version_counts", 1
# Prometheus' latency bucket bounds (seconds): exact edges of the histogram below.
PROMETHEUS_BUCKETS_S = LATENCY_BUCKETS_S  # one list: an SLO's latency threshold must be a bucket
# Latency bucket upper edges in ms: 0.1 ms .. 100 s, 40 per decade (≈ 6% apart), the
# Prometheus bounds, then +inf.
EDGES_MS = np.unique(
    np.concatenate([np.logspace(-1, 5, 241), np.array(PROMETHEUS_BUCKETS_S) * 1000.0, [np.inf]])
)
FIELDS = ("requests", "errors", "labeled", "correct", "sq_error", "latency_sum_ms")
_R, _E, _L, _C, _S, _LS = range(len(FIELDS))

F64 = npt.NDArray[np.float64]


class VersionCounts:
    """Cumulative requests, errors, latency histogram and label outcomes per version name."""

    def __init__(self, task: str = "binary") -> None:
        self.task = task
        self.counts: dict[str, F64] = {}
        self.latency: dict[str, F64] = {}
        self.moments: dict[str, F64] = {}  # per numeric feature: count, sum, sum of squares
        self.max_ts = 0.0  # the newest prediction time seen: the rollout's event clock

    def _row(self, version: str, n_features: int = 0) -> tuple[F64, F64]:
        if version not in self.counts:
            self.counts[version] = np.zeros(len(FIELDS))
            self.latency[version] = np.zeros(len(EDGES_MS))
            self.moments[version] = np.zeros((n_features, 3))
        return self.counts[version], self.latency[version]

    def update(self, batch: MonitorBatch) -> Sequence[DriftDetected]:
        """Add the batch's predictions and joined labels; never alarms."""
        p = batch.predictions
        n_v = len(batch.versions)
        if len(p):
            req = np.bincount(p.version, minlength=n_v)
            err = np.bincount(p.version, weights=p.error.astype(np.float64), minlength=n_v)
            has = ~np.isnan(p.latency_ms)
            bucket = np.searchsorted(EDGES_MS, p.latency_ms[has], side="left")
            n_b = len(EDGES_MS)
            lsum = np.bincount(p.version[has], weights=p.latency_ms[has], minlength=n_v)
            hist = np.bincount(p.version[has] * n_b + bucket, minlength=n_v * n_b).reshape(n_v, n_b)
            self.max_ts = max(self.max_ts, float(p.ts.max()))
            x = p.numeric
            finite = np.abs(x) < 1e150  # finite, and its square too (NaN compares False)
            x0 = np.where(finite, x, 0.0)
            for code in np.flatnonzero(req).tolist():
                row, lat = self._row(batch.versions[code], x.shape[1])
                sel = p.version == code
                mom = self.moments[batch.versions[code]]
                if mom.shape[0] == x.shape[1]:
                    mom[:, 0] += finite[sel].sum(axis=0)
                    mom[:, 1] += x0[sel].sum(axis=0)
                    mom[:, 2] += (x0[sel] ** 2).sum(axis=0)
                row[_R] += req[code]
                row[_E] += err[code]
                row[_LS] += lsum[code]
                lat += hist[code]
        j = batch.joined
        if j is not None and len(j):
            ok = np.isfinite(j.label) & np.isfinite(j.prediction)
            codes = j.version[ok]
            lab = np.bincount(codes, minlength=n_v)
            hit: npt.NDArray[Any]
            sq: npt.NDArray[Any]
            if self.task == "regression":
                sq = np.bincount(
                    codes, weights=(j.prediction[ok] - j.label[ok]) ** 2, minlength=n_v
                )
                hit = np.zeros(n_v)
            else:
                right = (np.rint(j.prediction[ok]) == j.label[ok]).astype(np.float64)
                hit = np.bincount(codes, weights=right, minlength=n_v)
                sq = np.zeros(n_v)
            for code in np.flatnonzero(lab).tolist():
                row, _ = self._row(batch.versions[code])
                row[_L] += lab[code]
                row[_C] += hit[code]
                row[_S] += sq[code]
        return ()

    def merge(self, other: VersionCounts) -> None:
        """Add another's counts (another partition's, or another bucket's): sums commute, so
        the merged counts do not depend on how the events were split."""
        for v in other.counts:
            mom = other.moments[v]
            row, lat = self._row(v, mom.shape[0])
            row += other.counts[v]
            lat += other.latency[v]
            self.moments[v] = _plus(self.moments[v], mom)
        self.max_ts = max(self.max_ts, other.max_ts)

    def state_dict(self) -> dict[str, Any]:
        """Counts and histograms per version."""
        return {
            "kind": STATE_KIND,
            "v": STATE_VERSION,
            "versions": sorted(self.counts),
            "counts": [self.counts[v] for v in sorted(self.counts)],
            "latency": [self.latency[v] for v in sorted(self.counts)],
            "moments": [self.moments[v] for v in sorted(self.counts)],
            "max_ts": self.max_ts,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        require_state_version(state, STATE_KIND, STATE_VERSION)
        names = list(state["versions"])
        self.counts = {
            v: np.array(c, np.float64) for v, c in zip(names, state["counts"], strict=True)
        }
        self.latency = {
            v: np.array(h, np.float64) for v, h in zip(names, state["latency"], strict=True)
        }
        self.moments = {
            v: np.array(m, np.float64).reshape(-1, 3)
            for v, m in zip(names, state["moments"], strict=True)
        }
        self.max_ts = float(state["max_ts"])


class Totals:
    """Counts of one version summed over partitions: a value, comparable and subtractable."""

    def __init__(
        self, counts: F64 | None = None, latency: F64 | None = None, moments: F64 | None = None
    ) -> None:
        self.counts = np.zeros(len(FIELDS)) if counts is None else counts
        self.latency = np.zeros(len(EDGES_MS)) if latency is None else latency
        self.moments = np.zeros((0, 3)) if moments is None else moments

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.counts + other.counts,
            self.latency + other.latency,
            _plus(self.moments, other.moments),
        )

    def __sub__(self, other: Totals) -> Totals:
        return Totals(
            self.counts - other.counts,
            self.latency - other.latency,
            _plus(self.moments, -other.moments),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (stored as the rollout's baseline)."""
        return {
            "counts": self.counts.tolist(),
            "latency": self.latency.tolist(),
            "moments": self.moments.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Totals:
        """The inverse of ``to_dict``."""
        return cls(
            np.array(d["counts"], np.float64),
            np.array(d["latency"], np.float64),
            np.array(d.get("moments", []), np.float64).reshape(-1, 3),
        )

    def quantile_ms(self, q: float) -> float | None:
        """The bucket edge at which the cumulative share reaches ``q`` (None without data)."""
        total = self.latency.sum()
        if total <= 0:
            return None
        idx = int(np.searchsorted(np.cumsum(self.latency) / total, q, side="left"))
        return float(EDGES_MS[min(idx, len(EDGES_MS) - 2)])

    def at_most(self, bound_ms: float) -> float:
        """Requests with latency ≤ ``bound_ms`` (exact when it is a bucket edge)."""
        edge = int(np.searchsorted(EDGES_MS, bound_ms, side="left"))
        return float(self.latency[: edge + 1].sum())

    def slower_than(self, threshold_ms: float) -> int:
        """Requests slower than the first bucket edge at or above ``threshold_ms``."""
        edge = int(np.searchsorted(EDGES_MS, threshold_ms, side="left"))
        return int(self.latency[edge + 1 :].sum())

    def arm(self, slow_ms: Sequence[float | None], ceiling_ms: float | None) -> ArmCounts:
        """This version's counts as one arm of the analysis: ``slow_ms`` the latency
        thresholds (one per quantile; None: no latency data yet)."""
        c = self.counts
        return ArmCounts(
            requests=int(c[_R]),
            errors=int(c[_E]),
            slow=tuple(self.slower_than(t) if t is not None else 0 for t in slow_ms),
            over_ceiling=self.slower_than(ceiling_ms) if ceiling_ms is not None else 0,
            labeled=int(c[_L]),
            correct=int(c[_C]),
            sq_error=float(c[_S]),
        )


def _plus(a: F64, b: F64) -> F64:
    """Moment tables added; an empty table (no data yet) is zero."""
    if a.size == 0:
        return b.copy()
    if b.size == 0:
        return a.copy()
    return a + b


def totals(monitors: Iterable[VersionCounts], version: str) -> Totals:
    """The counts of ``version`` summed over the given monitors (one per partition)."""
    out = Totals()
    for m in monitors:
        if version in m.counts:
            out = out + Totals(m.counts[version], m.latency[version], m.moments[version])
    return out
