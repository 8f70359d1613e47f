"""Shared parts of the quality accumulators: finite-row filtering, merge checks, running sums.

:mod:`driftd.detectors.quality` and :mod:`driftd.detectors.quality_scores` build on these; the
row rules (non-finite rows are skipped and counted) live here so that every metric keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import envelope, open_envelope

__all__ = [
    "F64",
    "I64",
    "MeanAccumulator",
    "SumAccumulator",
    "check_bins",
    "check_same",
    "finite_pairs",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def finite_pairs(y_true: npt.ArrayLike, y: npt.ArrayLike) -> tuple[F64, F64, int]:
    """Both inputs as float64, finite rows only, and the number of rows skipped."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(p)
    return t[ok], p[ok], int(t.size - np.count_nonzero(ok))


def check_same(a: object, b: object, what: str) -> None:
    if a != b:
        raise ValueError(f"cannot merge accumulators with different {what}: {a!r} and {b!r}")


def check_bins(n: int, name: str) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


class SumAccumulator:
    """Running sums over rows: the mergeable state of a mean-type metric."""

    _KIND = ""
    _N_SUMS = 1

    def __init__(self) -> None:
        self.sums: F64 = np.zeros(self._N_SUMS, dtype=np.float64)
        self.n = 0
        self.skipped = 0

    def _terms(self, t: F64, p: F64) -> F64:
        raise NotImplementedError

    def update(self, y_true: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Add a batch of (label, prediction or score) pairs."""
        t, p, skipped = finite_pairs(y_true, y)
        self.sums += self._terms(t, p)
        self.n += int(t.size)
        self.skipped += skipped

    def merge(self, other: SumAccumulator) -> None:
        """Add another window's sums to this one."""
        check_same(self._KIND, other._KIND, "kinds")
        self.sums += other.sums
        self.n += other.n
        self.skipped += other.skipped

    def state_dict(self) -> dict[str, Any]:
        """Sums and counts in a version-1 envelope."""
        state: dict[str, Any] = {"sums": self.sums.copy(), "n": self.n, "skipped": self.skipped}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.sums = np.array(s["sums"], dtype=np.float64).reshape(self._N_SUMS)
        self.n, self.skipped = int(s["n"]), int(s["skipped"])


class MeanAccumulator(SumAccumulator):
    def result(self) -> float:
        """The mean of the per-row terms; NaN when nothing was seen."""
        return float(self.sums[0] / self.n) if self.n else float("nan")
