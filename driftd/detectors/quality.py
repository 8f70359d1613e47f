"""Windowed quality metrics once labels join: mergeable accumulators, one concern each.

Every accumulator has ``update(y_true, y)`` (``y`` is a class code prediction, a probability of
class 1, or a regression prediction, as named), ``merge(other)``, ``result()`` and a versioned
``state_dict()`` / ``load_state_dict()``. Labels and predictions arrive as float64 (class codes
for string targets) and scores as float64 with NaN when absent: rows where any input is not
finite (or a class code is outside ``[0, n_classes)``) are skipped and counted in ``skipped``.
An accumulator that has seen nothing returns NaN: no data is not a good score.

This module holds the metrics of predicted classes and regression predictions; the binary
score-based metrics (ROC AUC, log loss, Brier score, calibration error) live in
:mod:`driftd.detectors.quality_scores` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import envelope, open_envelope
from driftd.detectors.quality_base import F64, I64, SumAccumulator, check_same, finite_pairs
from driftd.detectors.quality_scores import ROCAUC, BrierScore, CalibrationError, LogLoss

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
        t, p, skipped = finite_pairs(y_true, y_pred)
        k = self.n_classes
        ok = (t >= 0) & (t < k) & (p >= 0) & (p < k) & (t == np.floor(t)) & (p == np.floor(p))
        flat = t[ok].astype(np.int64) * k + p[ok].astype(np.int64)
        self.counts += np.bincount(flat, minlength=k * k).reshape(k, k)
        self.skipped += skipped + int(ok.size - np.count_nonzero(ok))

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another window's counts to this one."""
        check_same((self.n_classes, self.average), (other.n_classes, other.average), "parameters")
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


@dataclass(frozen=True, slots=True)
class RegressionScores:
    """Mean absolute error and root mean squared error of a window."""

    mae: float
    rmse: float


class RegressionErrors(SumAccumulator):
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
