"""CBPE for a classifier over K classes: per-class isotonic calibration, one-vs-rest.

Each class ``k`` gets its own calibrator of ``P(y = k | score_k)`` fitted on the labelled
reference (as NannyML does); the K calibrated probabilities of a row are renormalised to sum to
one. The labels of an unlabelled window are then independent categorical draws, so the
estimates are functions of the expected confusion matrix and the per-class rank sums; the band
is built as in :mod:`driftd.detectors.cbpe` (bootstrap calibrators, simulated labellings for
small windows, the normal law of the sufficient statistics for larger ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.detectors._cbpe import (
    _CELLS,
    EXACT_BELOW,
    F64,
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

__all__ = ["MulticlassCBPE"]


class MulticlassCBPE:
    """CBPE for a classifier over K classes: per-class isotonic calibration, one-vs-rest.

    Parameters
    ----------
    reference_scores
        ``(n, K)`` scores (predicted probabilities) on a labelled window, column ``k`` for
        ``classes[k]``.
    reference_labels
        The ``n`` true classes (any values found in ``classes``).
    classes
        The class of each score column; default: the sorted distinct reference labels.
    confidence, n_draws, n_boot, seed
        As in :class:`CBPE`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), 20_000)
    >>> y = (rng.random(20_000)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    >>> e = MulticlassCBPE(p, y).estimate(rng.dirichlet([4.0, 1.0, 1.0], 3_000))
    >>> round(e.accuracy.value, 2), e.accuracy.lower < e.accuracy.value < e.accuracy.upper
    (0.69, True)
    """

    _KIND = "cbpe.multiclass"

    def __init__(
        self,
        reference_scores: npt.ArrayLike,
        reference_labels: npt.ArrayLike,
        classes: Sequence[Any] | None = None,
        confidence: float = 0.95,
        n_draws: int = 1_000,
        n_boot: int = 50,
        seed: int = 0,
    ) -> None:
        _check_params("isotonic", confidence, 1, n_draws, n_boot)
        s = np.asarray(reference_scores, dtype=np.float64)
        labels = np.asarray(reference_labels)
        if s.ndim != 2 or s.shape[1] < 2:
            raise ValueError(f"reference scores must be (n, K >= 2), got shape {s.shape}")
        if labels.shape != (s.shape[0],):
            raise ValueError(
                f"{s.shape[0]} reference score rows but labels of shape {labels.shape}"
            )
        self.classes = list(np.unique(labels)) if classes is None else list(classes)
        if len(self.classes) != s.shape[1] or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{s.shape[1]} score columns but classes {self.classes!r}")
        y = self._codes(labels, "reference labels")
        ok = np.isfinite(s).all(axis=1)
        s, y = s[ok], y[ok]
        self.confidence, self.n_draws, self.seed = float(confidence), n_draws, seed
        weights = _boot_weights(y.size, n_boot, seed)
        self._curves = [
            _Curve.fit(s[:, k], (y == k).astype(np.float64), "isotonic", 1, weights)
            for k in range(s.shape[1])
        ]

    def _codes(self, labels: npt.NDArray[Any], what: str) -> npt.NDArray[np.intp]:
        """Column index of each class; unknown classes (NaN included) are refused by name."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        try:
            codes = np.array([lookup[v] for v in labels.tolist()], dtype=np.intp)
        except (KeyError, TypeError) as e:
            unknown = sorted({repr(v) for v in labels.tolist() if v not in lookup})[:5]
            raise ValueError(f"{what} hold unknown classes {', '.join(unknown)}") from e
        return codes

    def calibrated(self, scores: npt.ArrayLike) -> F64:
        """``(n, K)`` calibrated class probabilities, each row summing to one."""
        s = np.asarray(scores, dtype=np.float64)
        return _renormalise(np.stack([c(s[:, k]) for k, c in enumerate(self._curves)], axis=-1))

    def estimate(
        self, scores: npt.ArrayLike, y_pred: npt.ArrayLike | None = None
    ) -> PerformanceEstimate:
        """Estimated accuracy, macro precision/recall/F1 and one-vs-rest macro ROC AUC.

        ``y_pred``: the predicted classes (default: the class of the highest score). Rows with
        a NaN score are skipped.
        """
        s = np.asarray(scores, dtype=np.float64)
        k = len(self.classes)
        if s.ndim != 2 or s.shape[1] != k:
            raise ValueError(f"scores must be (n, {k}), got shape {s.shape}")
        ok = np.isfinite(s).all(axis=1)
        if y_pred is None:
            yhat = np.argmax(s[ok], axis=1) if ok.any() else np.zeros(0, np.intp)
        else:
            pred = np.asarray(y_pred)
            if pred.shape != (s.shape[0],):
                raise ValueError(f"{s.shape[0]} score rows but y_pred has shape {pred.shape}")
            yhat = self._codes(pred[ok], "y_pred")
        s = s[ok]
        n = s.size // k
        onehot = np.eye(k)[yhat]
        ranks = np.column_stack([_ranks(s[:, j]) for j in range(k)]) if n else np.zeros((0, k))
        p = self.calibrated(s)
        npred = onehot.sum(axis=0)
        mean = _mc_stats_mean(p[None], onehot, ranks)
        values = _multiclass_from_stats(mean, npred, n)[:, 0]
        if n:
            values[4] = np.mean([_expected_auc(s[:, j], p[:, j]) for j in range(k)])
        pb = _renormalise(np.stack([c.boot(s[:, j]) for j, c in enumerate(self._curves)], -1))
        rng = np.random.default_rng(self.seed)
        if n < EXACT_BELOW:
            stats = self._simulate(pb, yhat, ranks, rng)
        else:
            stats = _normal_draws(
                _mc_stats_mean(pb, onehot, ranks), _mc_cov(p, onehot, ranks), self.n_draws, rng
            )
        draws = _multiclass_from_stats(stats, npred, n)
        return _estimate(n, int(ok.size - n), self.confidence, values, draws)

    def _simulate(
        self, pb: F64, yhat: npt.NDArray[np.intp], ranks: F64, rng: np.random.Generator
    ) -> F64:
        """Sufficient statistics of ``n_draws`` labellings simulated row by row."""
        b, n, k = pb.shape
        cum = np.cumsum(pb, axis=2)
        chunk = max(1, _CELLS // max(n * k, 1))
        out = []
        for i in range(0, self.n_draws, chunk):
            rows = np.arange(i, min(i + chunk, self.n_draws))
            y = (rng.random((rows.size, n, 1)) > cum[rows % b]).sum(axis=2).clip(0, k - 1)
            d = np.arange(rows.size)[:, None]
            conf = np.bincount((d * k * k + y * k + yhat).ravel(), minlength=rows.size * k * k)
            r = np.take_along_axis(np.broadcast_to(ranks, (rows.size, n, k)), y[..., None], 2)
            rsum = np.bincount((d * k + y).ravel(), weights=r.ravel(), minlength=rows.size * k)
            out.append(np.hstack([conf.reshape(rows.size, k * k), rsum.reshape(rows.size, k)]))
        return np.concatenate(out, axis=0).astype(np.float64)

    def state_dict(self) -> dict[str, Any]:
        """The per-class calibrators, classes and parameters, in a version-1 envelope."""
        state: dict[str, Any] = {"classes": list(self.classes)}
        state |= {"curves": [c.state() for c in self._curves]}
        state |= {"confidence": self.confidence, "n_draws": self.n_draws, "seed": self.seed}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.classes = list(s["classes"])
        self._curves = [_Curve.load("isotonic", c) for c in s["curves"]]
        self.confidence, self.n_draws, self.seed = (
            float(s["confidence"]),
            int(s["n_draws"]),
            int(s["seed"]),
        )


def _renormalise(q: F64) -> F64:
    """Rows scaled to sum to one (uniform where every class got probability 0)."""
    total = q.sum(axis=-1, keepdims=True)
    zero = total <= 0
    out = q / np.where(zero, 1.0, total)
    if zero.any():
        out[np.broadcast_to(zero, out.shape)] = 1.0 / q.shape[-1]
    return out


def _mc_stats_mean(p: F64, onehot: F64, ranks: F64) -> F64:
    """Expected confusion matrix (true k, predicted c; flattened) and per-class rank sums."""
    conf = np.matmul(p.transpose(0, 2, 1), onehot)
    rsum = (p * ranks).sum(axis=1)
    return np.hstack([conf.reshape(p.shape[0], -1), rsum])


def _mc_cov(p: F64, onehot: F64, ranks: F64) -> F64:
    """Covariance of ``_mc_stats_mean``'s statistics: rows are independent categoricals."""
    k = p.shape[1]
    sig = -np.einsum("nk,nl->nkl", p, p)
    sig[:, np.arange(k), np.arange(k)] += p
    cc = np.zeros((k, k, k, k))
    g = np.einsum("nkl,nc->ckl", sig, onehot)
    for c in range(k):
        cc[:, c, :, c] = g[c]
    cr = np.einsum("nc,nkl,nl->kcl", onehot, sig, ranks).reshape(k * k, k)
    rr = np.einsum("nkl,nk,nl->kl", sig, ranks, ranks)
    return np.block([[cc.reshape(k * k, k * k), cr], [cr.T, rr]])


def _multiclass_from_stats(stats: F64, npred: F64, n: int) -> F64:
    """Accuracy, macro precision/recall/F1 and macro one-vs-rest AUC (rows) per stats row."""
    k = npred.size
    conf = np.clip(stats[:, : k * k].reshape(-1, k, k), 0.0, None)
    diag = np.minimum(np.diagonal(conf, axis1=1, axis2=2), npred)
    true = np.clip(conf.sum(axis=2), 0.0, n)
    rsum = stats[:, k * k :]
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = diag.sum(axis=1) / n
        prec = np.where(npred > 0, diag / np.where(npred > 0, npred, 1.0), 0.0).mean(axis=1)
        rec = np.where(true > 0, diag / np.where(true > 0, true, 1.0), 0.0).mean(axis=1)
        denom = npred + true
        f1 = np.where(denom > 0, 2.0 * diag / np.where(denom > 0, denom, 1.0), 0.0).mean(axis=1)
        auc_k = (rsum - true * (true + 1.0) / 2.0) / (true * (n - true))
        auc = np.where(np.isfinite(auc_k).all(axis=1), np.clip(auc_k, 0, 1).mean(axis=1), np.nan)
    if n == 0:
        acc = prec = rec = f1 = auc = np.full(stats.shape[0], np.nan)
    return np.vstack([acc, prec, rec, f1, auc])
