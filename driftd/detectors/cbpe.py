"""Label-free performance estimation of classifiers (CBPE, as in NannyML): binary and multiclass.

A calibrator fitted on a labelled reference window maps a model's score to ``P(y = k | score)``
(binary: isotonic or histogram; multiclass: one isotonic curve per class, one-vs-rest, rows
renormalised to sum to one, as NannyML does; ``MulticlassCBPE`` lives in
``driftd.detectors.cbpe_multiclass`` and is re-exported here). On an unlabelled window the
labels are then independent categorical draws with those probabilities, so every metric is a
function of a few sums of them, the *sufficient statistics*: the confusion matrix and, per class,
the rank sum of that class's score over its rows (ROC AUC, one-vs-rest). The estimate is the
metric of the expected statistics (for ROC AUC, of the expected ROC curve).

The band is the central ``confidence`` interval of the metric over ``n_draws`` labellings the
window may realise when its labels arrive. Draw ``j`` takes its probabilities from calibrator
``j mod n_boot``, each fitted on a bootstrap resample of the reference, so the band carries the
calibrator's own error as well as the labels' sampling noise. Windows under ``EXACT_BELOW`` rows
simulate the labels row by row; larger ones draw the statistics from the normal law with their
exact mean and covariance (a sum of n independent terms: the central limit theorem), which
costs O(n) instead of O(n * n_draws).

The estimate holds under covariate shift (inputs move, ``P(y | score)`` stays), which is what
CBPE assumes; it does not hold under concept shift. The bootstrap does not see the calibrator's
smoothing bias where a shifted window sits in sparse parts of the reference: with a reference
10x the window, coverage ran about 5 points under ``confidence``; at 25x it is about nominal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors._cbpe import (
    _CELLS,
    EXACT_BELOW,
    F64,
    Estimate,
    PerformanceEstimate,
    _boot_weights,
    _check_params,
    _Curve,
    _estimate,
    _expected_auc,
    _normal_draws,
    _ranks,
)
from driftd.detectors.base import envelope, open_envelope
from driftd.detectors.cbpe_multiclass import MulticlassCBPE

__all__ = ["CBPE", "Estimate", "MulticlassCBPE", "PerformanceEstimate"]

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


class CBPE:
    """Confidence-based performance estimation of a binary classifier without labels.

    Parameters
    ----------
    reference_scores, reference_labels
        A labelled window: the model's scores and the 0/1 labels that joined them.
    threshold
        The model predicts class 1 when its score is at least this (unless ``estimate`` gets
        the predicted classes as ``y_pred``).
    calibration
        ``"isotonic"`` (the least-squares monotone fit, as scikit-learn's and NannyML's: flat
        over each pooled block, linear between blocks) or ``"histogram"`` (``n_bins``
        equal-frequency bins, the mean label per bin).
    confidence
        Probability that the band covers the realised value, when the calibration holds.
    n_draws, n_boot, seed
        Simulated labellings for the band, and bootstrap calibrators they draw ``p`` from
        (``n_boot=0``: the fitted calibrator alone). Every call reseeds from ``seed``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.random(20_000)
    >>> est = CBPE(s, (rng.random(20_000) < s).astype(float))
    >>> e = est.estimate(rng.random(2_000) ** 2)  # shifted towards low scores
    >>> round(e.accuracy.value, 2), e.accuracy.lower < e.accuracy.value < e.accuracy.upper
    (0.81, True)
    """

    _KIND = "cbpe"

    def __init__(
        self,
        reference_scores: npt.ArrayLike,
        reference_labels: npt.ArrayLike,
        threshold: float = 0.5,
        calibration: Literal["isotonic", "histogram"] = "isotonic",
        n_bins: int = 20,
        confidence: float = 0.95,
        n_draws: int = 1_000,
        n_boot: int = 50,
        seed: int = 0,
    ) -> None:
        _check_params(calibration, confidence, n_bins, n_draws, n_boot)
        s = np.asarray(reference_scores, dtype=np.float64)
        y = np.asarray(reference_labels, dtype=np.float64)
        if s.ndim > 1 or y.ndim > 1:
            raise ValueError(
                f"reference scores and labels must be 1-d, got shapes {s.shape} and {y.shape}"
                " (multiclass scores: use MulticlassCBPE)"
            )
        if s.shape != y.shape:
            raise ValueError(f"{s.size} reference scores but {y.size} labels")
        ok = np.isfinite(s) & np.isfinite(y)
        if not np.isin(y[ok], (0.0, 1.0)).all() or np.unique(y[ok]).size != 2:
            raise ValueError("reference labels must be 0/1 with both classes present")
        self.threshold, self.calibration, self.n_bins = float(threshold), calibration, n_bins
        self.confidence, self.n_draws, self.seed = float(confidence), n_draws, seed
        weights = _boot_weights(int(ok.sum()), n_boot, seed)
        self._curve = _Curve.fit(s[ok], y[ok], calibration, n_bins, weights)

    def calibrated(self, scores: npt.ArrayLike) -> F64:
        """P(y = 1 | score) for each score."""
        return self._curve(np.asarray(scores, dtype=np.float64))

    def estimate(
        self, scores: npt.ArrayLike, y_pred: npt.ArrayLike | None = None
    ) -> PerformanceEstimate:
        """Estimated accuracy, precision, recall, F1 and ROC AUC of an unlabelled window.

        ``y_pred``: the 0/1 classes the model predicted (default: score >= threshold). Rows
        whose score is NaN are skipped; a NaN or other value in ``y_pred`` is refused.
        """
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1:
            raise ValueError(f"scores must be 1-d, got shape {s.shape}")
        ok = np.isfinite(s)
        if y_pred is None:
            yhat = (s[ok] >= self.threshold).astype(np.float64)
        else:
            pred = np.asarray(y_pred, dtype=np.float64)
            if pred.shape != s.shape:
                raise ValueError(f"{s.size} scores but y_pred has shape {pred.shape}")
            if np.isnan(pred[ok]).any():
                raise ValueError("y_pred has NaN where the score is not")
            if not np.isin(pred[ok], (0.0, 1.0)).all():
                raise ValueError("y_pred must be 0/1 (the predicted class)")
            yhat = pred[ok]
        s = s[ok]
        ranks = _ranks(s)
        p = self._curve(s)
        basis = np.vstack([yhat, 1.0 - yhat, ranks])
        values = _binary_from_stats((basis @ p)[None, :], s.size, yhat.sum())[:, 0]
        values[4] = _expected_auc(s, p)
        pb = self._curve.boot(s)
        rng = np.random.default_rng(self.seed)
        if s.size < EXACT_BELOW:
            stats = self._simulate(pb, basis, rng)
        else:
            v = p * (1.0 - p)
            cov = (basis * v) @ basis.T
            cov[0, 1] = cov[1, 0] = 0.0  # predicted 1 and predicted 0 are disjoint rows
            stats = _normal_draws(pb @ basis.T, cov, self.n_draws, rng)
        draws = _binary_from_stats(stats, s.size, yhat.sum())
        return _estimate(s.size, int(ok.size - s.size), self.confidence, values, draws)

    def _simulate(self, pb: F64, basis: F64, rng: np.random.Generator) -> F64:
        """Sufficient statistics of ``n_draws`` labellings simulated row by row."""
        n, b = basis.shape[1], pb.shape[0]
        chunk = max(1, _CELLS // max(n, 1))
        out = []
        for i in range(0, self.n_draws, chunk):
            rows = np.arange(i, min(i + chunk, self.n_draws)) % b
            out.append((rng.random((rows.size, n)) < pb[rows]).astype(np.float64) @ basis.T)
        return np.concatenate(out, axis=0)

    def state_dict(self) -> dict[str, Any]:
        """The calibrator and parameters, in a version-1 envelope."""
        state: dict[str, Any] = self._curve.state()
        state |= {"threshold": self.threshold, "calibration": self.calibration}
        state |= {"n_bins": self.n_bins, "confidence": self.confidence}
        state |= {"n_draws": self.n_draws, "seed": self.seed}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.threshold, self.calibration = float(s["threshold"]), s["calibration"]
        self._curve = _Curve.load(self.calibration, s)
        self.n_bins, self.confidence = int(s["n_bins"]), float(s["confidence"])
        self.n_draws, self.seed = int(s["n_draws"]), int(s["seed"])


def _metrics(y: npt.NDArray[Any], yhat: F64, ranks: F64) -> F64:
    """Binary metrics (rows) for each labelling in ``y`` (rows of 0/1 or probabilities)."""
    basis = np.vstack([yhat, 1.0 - yhat, ranks])
    return _binary_from_stats(y.astype(np.float64) @ basis.T, yhat.size, float(yhat.sum()))


def _binary_from_stats(stats: F64, n: int, npp: float) -> F64:
    """Metrics (rows) from (true positives, positives predicted 0, rank sum of positives) rows."""
    tp = np.clip(stats[:, 0], 0.0, npp)
    fn = np.clip(stats[:, 1], 0.0, n - npp)
    pos = tp + fn
    neg = n - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = (n - npp - pos + 2.0 * tp) / n
        precision = tp / npp if npp else np.full_like(tp, np.nan)
        recall = tp / pos
        f1 = 2.0 * tp / (npp + pos)
        auc = np.clip((stats[:, 2] - pos * (pos + 1.0) / 2.0) / (pos * neg), 0.0, 1.0)
    return np.vstack([acc, precision, recall, f1, auc])
