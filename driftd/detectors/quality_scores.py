"""Binary score-based quality metrics: log loss, Brier score, calibration error and ROC AUC.

The score is the probability of class 1 and the label is 0 or 1; the accumulators follow the
rules of :mod:`driftd.detectors.quality` (non-finite rows skipped and counted, NaN when nothing
was seen, windows merge exactly, versioned state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import envelope, open_envelope
from driftd.detectors.quality_base import (
    F64,
    I64,
    MeanAccumulator,
    check_bins,
    check_same,
    finite_pairs,
)

__all__ = ["ROCAUC", "BrierScore", "CalibrationError", "LogLoss"]

_EPS = float(np.finfo(np.float64).eps)  # log-loss clipping, as scikit-learn does for float64


class LogLoss(MeanAccumulator):
    """Mean binary log loss of P(class 1) scores, clipped to [eps, 1 - eps] as scikit-learn does.

    Examples
    --------
    >>> m = LogLoss()
    >>> m.update([1.0, 0.0], [0.5, 0.5])
    >>> round(m.result(), 6)
    0.693147
    """

    _KIND = "quality.log_loss"

    def _terms(self, t: F64, p: F64) -> F64:
        q = np.clip(p, _EPS, 1.0 - _EPS)
        return np.array([-(t * np.log(q) + (1.0 - t) * np.log1p(-q)).sum()])


class BrierScore(MeanAccumulator):
    """Mean squared difference between P(class 1) scores and 0/1 labels.

    Examples
    --------
    >>> m = BrierScore()
    >>> m.update([1.0, 0.0], [0.8, 0.4])
    >>> round(m.result(), 6)
    0.1
    """

    _KIND = "quality.brier"

    def _terms(self, t: F64, p: F64) -> F64:
        return np.array([np.square(p - t).sum()])


class CalibrationError:
    """Expected calibration error over ``n_bins`` equal-width bins of P(class 1) on [0, 1].

    Bin ``b`` holds scores in ``[b / n_bins, (b + 1) / n_bins)``, the last bin also holds 1.0;
    scores outside [0, 1] are clipped into it. ECE is ``sum_b (n_b / n) * |mean label_b -
    mean score_b|``, from per-bin counts and sums, so windows merge exactly.

    Examples
    --------
    >>> m = CalibrationError(n_bins=2)
    >>> m.update([0.0, 1.0, 1.0, 1.0], [0.2, 0.4, 0.6, 0.8])
    >>> round(m.result(), 6)
    0.25
    """

    _KIND = "quality.calibration_error"

    def __init__(self, n_bins: int = 10) -> None:
        self.n_bins = check_bins(n_bins, "n_bins")
        self.count: F64 = np.zeros(n_bins)
        self.score_sum: F64 = np.zeros(n_bins)
        self.label_sum: F64 = np.zeros(n_bins)
        self.skipped = 0

    def update(self, y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> None:
        """Add a batch of (0/1 label, P(class 1)) pairs to their bins."""
        t, p, skipped = finite_pairs(y_true, y_score)
        p = np.clip(p, 0.0, 1.0)
        b = np.minimum((p * self.n_bins).astype(np.int64), self.n_bins - 1)
        self.count += np.bincount(b, minlength=self.n_bins)
        self.score_sum += np.bincount(b, weights=p, minlength=self.n_bins)
        self.label_sum += np.bincount(b, weights=t, minlength=self.n_bins)
        self.skipped += skipped

    def merge(self, other: CalibrationError) -> None:
        """Add another window's bins to this one."""
        check_same(self.n_bins, other.n_bins, "n_bins")
        self.count += other.count
        self.score_sum += other.score_sum
        self.label_sum += other.label_sum
        self.skipped += other.skipped

    def result(self) -> float:
        """The expected calibration error; NaN when nothing was seen."""
        n = self.count.sum()
        if n == 0:
            return float("nan")
        return float(np.abs(self.label_sum - self.score_sum).sum() / n)

    def state_dict(self) -> dict[str, Any]:
        """Bins in a version-1 envelope."""
        state: dict[str, Any] = {
            "n_bins": self.n_bins,
            "count": self.count.copy(),
            "skipped": self.skipped,
        }
        state |= {"score_sum": self.score_sum.copy(), "label_sum": self.label_sum.copy()}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.__init__(int(s["n_bins"]))  # type: ignore[misc]
        for name in ("count", "score_sum", "label_sum"):
            setattr(self, name, np.array(s[name], dtype=np.float64).reshape(self.n_bins))
        self.skipped = int(s["skipped"])


class ROCAUC:
    """Binary ROC AUC: approximate from score histograms, or exact from the raw scores.

    ``mode="histogram"`` keeps, per class, counts of P(class 1) scores in ``resolution``
    equal-width bins on [0, 1] (scores outside are clipped in): memory is fixed and windows
    merge exactly. Pairs in different bins are ordered correctly; pairs in the same bin count
    as ties (1/2), so ``|approximate - exact| <= error_bound()``, which is half the fraction of
    (positive, negative) pairs that share a bin. ``mode="exact"`` keeps every score (memory grows
    with the window) and equals scikit-learn's ``roc_auc_score``.

    Examples
    --------
    >>> m = ROCAUC(mode="exact")
    >>> m.update([0.0, 0.0, 1.0, 1.0], [0.1, 0.4, 0.35, 0.8])
    >>> m.result()
    0.75
    >>> h = ROCAUC(resolution=100)
    >>> h.update([0.0, 0.0, 1.0, 1.0], [0.1, 0.4, 0.35, 0.8])
    >>> h.result(), h.error_bound()
    (0.75, 0.0)
    """

    _KIND = "quality.roc_auc"

    def __init__(
        self, mode: Literal["histogram", "exact"] = "histogram", resolution: int = 10_000
    ) -> None:
        if mode not in ("histogram", "exact"):
            raise ValueError(f"mode must be one of 'histogram', 'exact'; got {mode!r}")
        self.mode = mode
        self.resolution = check_bins(resolution, "resolution")
        self.hist: I64 = np.zeros((2, resolution if mode == "histogram" else 0), dtype=np.int64)
        self.labels: list[F64] = []
        self.scores: list[F64] = []
        self.skipped = 0

    def update(self, y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> None:
        """Add a batch of (0/1 label, score) pairs."""
        t, p, skipped = finite_pairs(y_true, y_score)
        self.skipped += skipped
        if self.mode == "exact":
            self.labels.append(t)
            self.scores.append(p)
            return
        r = self.resolution
        b = np.minimum((np.clip(p, 0.0, 1.0) * r).astype(np.int64), r - 1)
        self.hist += np.bincount(b + r * (t == 1), minlength=2 * r).reshape(2, r)

    def merge(self, other: ROCAUC) -> None:
        """Add another window's histograms (or scores) to this one."""
        check_same((self.mode, self.resolution), (other.mode, other.resolution), "parameters")
        self.hist += other.hist
        self.labels += [a.copy() for a in other.labels]
        self.scores += [a.copy() for a in other.scores]
        self.skipped += other.skipped

    def _histogram(self) -> I64:
        if self.mode == "histogram":
            return self.hist
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        t = np.concatenate(self.labels) if self.labels else np.zeros(0)
        # one bin per distinct score, so the histogram formula below is exact
        distinct, b = np.unique(scores, return_inverse=True)
        n = int(distinct.size)
        return np.bincount(b + n * (t == 1), minlength=2 * n).reshape(2, n)

    def result(self) -> float:
        """P(score of a positive > score of a negative), ties 1/2; NaN without both classes."""
        neg, pos = self._histogram().astype(np.float64)
        pairs = pos.sum() * neg.sum()
        if pairs == 0:
            return float("nan")
        below = np.cumsum(neg) - neg  # negatives in strictly lower bins
        return float((pos * (below + 0.5 * neg)).sum() / pairs)

    def error_bound(self) -> float:
        """Largest possible ``|result() - exact AUC|``: 0.0 in exact mode."""
        neg, pos = self._histogram().astype(np.float64)
        pairs = pos.sum() * neg.sum()
        if self.mode == "exact" or pairs == 0:
            return 0.0 if pairs else float("nan")
        return float(0.5 * (pos * neg).sum() / pairs)

    def state_dict(self) -> dict[str, Any]:
        """Histograms (or the raw scores) in a version-1 envelope."""
        labels = np.concatenate(self.labels) if self.labels else np.zeros(0)
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        state: dict[str, Any] = {
            "mode": self.mode,
            "resolution": self.resolution,
            "hist": self.hist.copy(),
        }
        state |= {"labels": labels, "scores": scores, "skipped": self.skipped}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.__init__(s["mode"], int(s["resolution"]))  # type: ignore[misc]
        self.hist = np.array(s["hist"], dtype=np.int64).reshape(2, -1)
        labels = np.array(s["labels"], dtype=np.float64)
        self.labels = [labels] if labels.size else []
        scores = np.array(s["scores"], dtype=np.float64)
        self.scores = [scores] if scores.size else []
        self.skipped = int(s["skipped"])
