"""Shared parts of CBPE and MulticlassCBPE: the calibration curve (isotonic or histogram, with
its bootstrap copies on fixed knots), the estimate types, parameter checks, the normal-law draws
of the sufficient statistics, the bands, ranks and the expected ROC AUC. See
:mod:`driftd.detectors.cbpe` for the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression
from scipy.stats import rankdata

F64 = npt.NDArray[np.float64]
_CELLS = 4_000_000  # simulated labels held in memory at once
GRID = 1_024  # knots of each bootstrap calibrator: bounds the state, smooths within ~0.1% of mass
EXACT_BELOW = 1_000  # windows with fewer rows simulate labels; larger ones use the normal law


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimated metric and its band."""

    value: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class PerformanceEstimate:
    """Estimated metrics of one unlabelled window; ``n`` rows used, ``skipped`` NaN scores.

    Multiclass: precision, recall and F1 are macro averages (a class never predicted, or never
    expected, counts 0 as in scikit-learn), ROC AUC is one-vs-rest macro.
    """

    n: int
    skipped: int
    confidence: float
    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    roc_auc: Estimate


def _isotonic(unique: F64, count: F64, total: F64) -> tuple[F64, F64]:
    """Isotonic regression of labels on distinct scores (with counts and label sums).

    The least-squares monotone fit (as scikit-learn's ``IsotonicRegression`` and NannyML): each
    block of pooled adjacent violators holds its mean label from its first to its last distinct
    score, linear between blocks. It keeps every block's label sum, so the sum of the fitted
    probabilities over any run of blocks is the labels' sum there; the estimates are such sums.
    """
    keep = count > 0
    unique, count, total = unique[keep], count[keep], total[keep]
    fit = isotonic_regression(total / count, weights=count)
    start, value = fit.blocks, np.asarray(fit.x, dtype=np.float64)[fit.blocks[:-1]]
    knots = np.column_stack([unique[start[:-1]], unique[start[1:] - 1]]).ravel()
    single = np.r_[True, np.diff(knots) > 0]  # a one-score block needs one knot
    return knots[single], np.repeat(value, 2)[single]


def _bin(edges: F64, s: F64) -> npt.NDArray[np.intp]:
    return np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(edges.size - 2, 0))


def _boot_weights(n: int, n_boot: int, seed: int) -> list[F64]:
    """Row weights: all ones, then ``n_boot`` bootstrap resamples (shared by every class)."""
    rng = np.random.default_rng(seed)
    boots = [
        np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64) for _ in range(n_boot)
    ]
    return [np.ones(n), *boots]


@dataclass
class _Curve:
    """One calibration curve, P(y = 1 | score), and its bootstrap copies on fixed knots."""

    calibration: str
    knots: F64
    values: F64
    boot_knots: F64
    boot_values: F64

    @classmethod
    def fit(cls, s: F64, y: F64, calibration: str, n_bins: int, weights: list[F64]) -> _Curve:
        """The calibrator under the first weights, and one more per further weight vector."""
        if calibration == "isotonic":
            unique, group = np.unique(s, return_inverse=True)
            size = unique.size
            boot_knots = np.unique(np.quantile(s, np.linspace(0.0, 1.0, min(GRID, size))))
        else:
            boot_knots = np.unique(np.quantile(s, np.linspace(0.0, 1.0, n_bins + 1)))
            group, size = _bin(boot_knots, s), max(boot_knots.size - 1, 1)
        fits = []
        for w in weights:
            count = np.bincount(group, weights=w, minlength=size).astype(np.float64)
            total = np.bincount(group, weights=w * y, minlength=size).astype(np.float64)
            if calibration == "isotonic":
                fits.append(_isotonic(unique, count, total))
            else:
                mean = total.sum() / count.sum()
                fits.append((boot_knots, np.where(count > 0, total / np.maximum(count, 1), mean)))
        boot = [np.interp(boot_knots, k, v) if k is not boot_knots else v for k, v in fits[1:]]
        boot_values = np.array(boot, dtype=np.float64) if boot else np.zeros((0, 0))
        return cls(calibration, fits[0][0], fits[0][1], boot_knots, boot_values)

    def __call__(self, s: F64) -> F64:
        if self.calibration == "isotonic":
            return np.interp(s, self.knots, self.values)
        return self.values[_bin(self.knots, s)]

    def boot(self, s: F64) -> F64:
        """P(y = 1 | score) under each bootstrap calibrator (rows); the fitted one if none."""
        if not self.boot_values.shape[0]:
            return self(s)[None, :]
        if self.calibration == "isotonic":  # shared knots: one search, then a gather per curve
            k = self.boot_knots
            if k.size == 1:
                return np.repeat(self.boot_values, s.size, axis=1)
            i = np.clip(np.searchsorted(k, s, side="right"), 1, k.size - 1)
            w = np.clip((s - k[i - 1]) / (k[i] - k[i - 1]), 0.0, 1.0)
            return self.boot_values[:, i - 1] * (1.0 - w) + self.boot_values[:, i] * w
        return self.boot_values[:, _bin(self.knots, s)]

    def state(self) -> dict[str, Any]:
        return {
            "knots": self.knots.copy(),
            "values": self.values.copy(),
            "boot_knots": self.boot_knots.copy(),
            "boot_values": self.boot_values.copy(),
        }

    @classmethod
    def load(cls, calibration: str, s: Mapping[str, Any]) -> _Curve:
        boot = np.array(s["boot_values"], dtype=np.float64)
        return cls(
            calibration,
            np.array(s["knots"], dtype=np.float64),
            np.array(s["values"], dtype=np.float64),
            np.array(s["boot_knots"], dtype=np.float64),
            boot if boot.ndim == 2 else boot.reshape(0, 0),
        )


def _check_params(
    calibration: str, confidence: float, n_bins: int, n_draws: int, n_boot: int
) -> None:
    if calibration not in ("isotonic", "histogram"):
        raise ValueError(f"calibration must be 'isotonic' or 'histogram', got {calibration!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    for name, v, low in (("n_bins", n_bins, 1), ("n_draws", n_draws, 1), ("n_boot", n_boot, 0)):
        if not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")


def _normal_draws(mu: F64, cov: F64, n_draws: int, rng: np.random.Generator) -> F64:
    """``n_draws`` rows of N(mu[j mod len(mu)], cov); ``cov`` may be singular."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    scale = np.where(sd > 0, sd, 1.0)
    w, v = np.linalg.eigh(cov / np.outer(scale, scale))
    root = (v * np.sqrt(np.clip(w, 0.0, None))) * scale[:, None]
    z = rng.standard_normal((n_draws, mu.shape[1]))
    return np.asarray(mu[np.arange(n_draws) % mu.shape[0]] + z @ root.T, dtype=np.float64)


def _bands(draws: F64, confidence: float) -> list[tuple[float, float]]:
    q = ((1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0)
    out = []
    with np.errstate(all="ignore"):
        for row in draws:
            ok = np.isfinite(row)
            out.append(tuple(np.quantile(row[ok], q)) if ok.any() else (np.nan, np.nan))
    return [(float(a), float(b)) for a, b in out]


def _estimate(
    n: int, skipped: int, confidence: float, values: F64, draws: F64
) -> PerformanceEstimate:
    est = [
        Estimate(float(v), lo, hi)
        for v, (lo, hi) in zip(values, _bands(draws, confidence), strict=True)
    ]
    return PerformanceEstimate(n, skipped, confidence, *est)


def _ranks(s: F64) -> F64:
    return np.asarray(rankdata(s), dtype=np.float64)


def _expected_auc(s: F64, p: F64) -> float:
    """AUC of the expected ROC curve: expected positive and negative mass per distinct score."""
    _, g = np.unique(s, return_inverse=True)
    pos, neg = np.bincount(g, weights=p), np.bincount(g, weights=1.0 - p)
    pairs = pos.sum() * neg.sum()
    if pairs == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / pairs)
