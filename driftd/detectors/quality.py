"""Windowed quality metrics once labels join: mergeable accumulators, one concern each.

Every accumulator has ``update(y_true, y)`` (``y`` is a class code prediction, a probability of
class 1, or a regression prediction, as named), ``merge(other)``, ``result()`` and a versioned
``state_dict()`` / ``load_state_dict()``. Labels and predictions arrive as float64 (class codes
for string targets) and scores as float64 with NaN when absent: rows where any input is not
finite (or a class code is outside ``[0, n_classes)``) are skipped and counted in ``skipped``.
An accumulator that has seen nothing returns NaN: no data is not a good score.

Score-based metrics (ROC AUC, log loss, Brier score, calibration error) are binary: the score is
the probability of class 1 and the label is 0 or 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import envelope, open_envelope

__all__ = [
    "ROCAUC",
    "BrierScore",
    "CalibrationError",
    "ClassificationScores",
    "ConfusionMatrix",
    "LogLoss",
    "RegressionErrors",
    "RegressionScores",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_EPS = float(np.finfo(np.float64).eps)  # log-loss clipping, as scikit-learn does for float64


def _pairs(y_true: npt.ArrayLike, y: npt.ArrayLike) -> tuple[F64, F64, int]:
    """Both inputs as float64, finite rows only, and the number of rows skipped."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(p)
    return t[ok], p[ok], int(t.size - np.count_nonzero(ok))


def _same(a: object, b: object, what: str) -> None:
    if a != b:
        raise ValueError(f"cannot merge accumulators with different {what}: {a!r} and {b!r}")


def _check_bins(n: int, name: str) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


@dataclass(frozen=True, slots=True)
class ClassificationScores:
    """Accuracy and (binary or macro-averaged) precision, recall and F1 of a window."""

    accuracy: float
    precision: float
    recall: float
    f1: float


class ConfusionMatrix:
    """Confusion-matrix counts; accuracy, precision, recall and F1 from them.

    ``average="binary"`` scores class 1 (needs ``n_classes == 2``); ``"macro"`` averages over the
    classes present in the labels or the predictions, as scikit-learn does. A zero denominator
    scores 0, as scikit-learn's ``zero_division`` default does.

    Examples
    --------
    >>> cm = ConfusionMatrix(n_classes=2)
    >>> cm.update([0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0])
    >>> cm.result().accuracy
    0.75
    >>> round(cm.result().f1, 4)
    0.8
    """

    _KIND = "quality.confusion_matrix"

    def __init__(self, n_classes: int, average: Literal["binary", "macro"] = "binary") -> None:
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        if average not in ("binary", "macro"):
            raise ValueError(f"average must be one of 'binary', 'macro'; got {average!r}")
        if average == "binary" and n_classes != 2:
            raise ValueError(f"average='binary' needs n_classes=2, got {n_classes}")
        self.n_classes = n_classes
        self.average = average
        self.counts: I64 = np.zeros((n_classes, n_classes), dtype=np.int64)  # [true, predicted]
        self.skipped = 0

    def update(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> None:
        """Count a batch of (label, predicted class) pairs."""
        t, p, skipped = _pairs(y_true, y_pred)
        k = self.n_classes
        ok = (t >= 0) & (t < k) & (p >= 0) & (p < k) & (t == np.floor(t)) & (p == np.floor(p))
        flat = t[ok].astype(np.int64) * k + p[ok].astype(np.int64)
        self.counts += np.bincount(flat, minlength=k * k).reshape(k, k)
        self.skipped += skipped + int(ok.size - np.count_nonzero(ok))

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another window's counts to this one."""
        _same((self.n_classes, self.average), (other.n_classes, other.average), "parameters")
        self.counts += other.counts
        self.skipped += other.skipped

    def result(self) -> ClassificationScores:
        """The scores of everything counted; all NaN when nothing was."""
        c = self.counts.astype(np.float64)
        total = c.sum()
        if total == 0:
            nan = float("nan")
            return ClassificationScores(nan, nan, nan, nan)
        tp = np.diag(c)
        predicted, actual = c.sum(axis=0), c.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(actual > 0, tp / actual, 0.0)
            f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
        if self.average == "binary":
            pr, rc, f = precision[1], recall[1], f1[1]
        else:
            present = (predicted + actual) > 0
            pr, rc, f = precision[present].mean(), recall[present].mean(), f1[present].mean()
        return ClassificationScores(float(tp.sum() / total), float(pr), float(rc), float(f))

    def state_dict(self) -> dict[str, Any]:
        """Counts and parameters in a version-1 envelope."""
        state: dict[str, Any] = {"n_classes": self.n_classes, "average": self.average}
        state |= {"counts": self.counts.copy(), "skipped": self.skipped}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.__init__(int(s["n_classes"]), s["average"])  # type: ignore[misc]
        self.counts = np.array(s["counts"], dtype=np.int64).reshape(self.n_classes, -1)
        self.skipped = int(s["skipped"])


class _SumAccumulator:
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
        t, p, skipped = _pairs(y_true, y)
        self.sums += self._terms(t, p)
        self.n += int(t.size)
        self.skipped += skipped

    def merge(self, other: _SumAccumulator) -> None:
        """Add another window's sums to this one."""
        _same(self._KIND, other._KIND, "kinds")
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


class _MeanAccumulator(_SumAccumulator):
    def result(self) -> float:
        """The mean of the per-row terms; NaN when nothing was seen."""
        return float(self.sums[0] / self.n) if self.n else float("nan")


class LogLoss(_MeanAccumulator):
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


class BrierScore(_MeanAccumulator):
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


@dataclass(frozen=True, slots=True)
class RegressionScores:
    """Mean absolute error and root mean squared error of a window."""

    mae: float
    rmse: float


class RegressionErrors(_SumAccumulator):
    """Mean absolute error and root mean squared error, from sums of ``|e|`` and ``e**2``.

    Examples
    --------
    >>> m = RegressionErrors()
    >>> m.update([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    >>> m.result()
    RegressionScores(mae=0.6666666666666666, rmse=1.1547005383792515)
    """

    _KIND = "quality.regression"
    _N_SUMS = 2

    def _terms(self, t: F64, p: F64) -> F64:
        e = p - t
        return np.array([np.abs(e).sum(), np.square(e).sum()])

    def result(self) -> RegressionScores:
        """MAE and RMSE; NaN when nothing was seen."""
        if not self.n:
            return RegressionScores(float("nan"), float("nan"))
        return RegressionScores(float(self.sums[0] / self.n), float(np.sqrt(self.sums[1] / self.n)))


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
        self.n_bins = _check_bins(n_bins, "n_bins")
        self.count: F64 = np.zeros(n_bins)
        self.score_sum: F64 = np.zeros(n_bins)
        self.label_sum: F64 = np.zeros(n_bins)
        self.skipped = 0

    def update(self, y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> None:
        """Add a batch of (0/1 label, P(class 1)) pairs to their bins."""
        t, p, skipped = _pairs(y_true, y_score)
        p = np.clip(p, 0.0, 1.0)
        b = np.minimum((p * self.n_bins).astype(np.int64), self.n_bins - 1)
        self.count += np.bincount(b, minlength=self.n_bins)
        self.score_sum += np.bincount(b, weights=p, minlength=self.n_bins)
        self.label_sum += np.bincount(b, weights=t, minlength=self.n_bins)
        self.skipped += skipped

    def merge(self, other: CalibrationError) -> None:
        """Add another window's bins to this one."""
        _same(self.n_bins, other.n_bins, "n_bins")
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
        self.resolution = _check_bins(resolution, "resolution")
        self.hist: I64 = np.zeros((2, resolution if mode == "histogram" else 0), dtype=np.int64)
        self.labels: list[F64] = []
        self.scores: list[F64] = []
        self.skipped = 0

    def update(self, y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> None:
        """Add a batch of (0/1 label, score) pairs."""
        t, p, skipped = _pairs(y_true, y_score)
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
        _same((self.mode, self.resolution), (other.mode, other.resolution), "parameters")
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
