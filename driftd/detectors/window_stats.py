"""Per-column statistics of the window test: statistic, p-value and effect size of one column.

Numeric columns are tested from the sketch counts, or from the sorted reference and the raw
current values in exact mode (KS, AD and Wasserstein agree with scipy there); categorical columns
from their code counts, the "unseen" bin included. :mod:`driftd.detectors.window` corrects the
p-values across columns and applies the effect-size floors.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from driftd.detectors import sketch as sk

__all__ = ["FloatArray", "IntArray", "categorical_test", "numeric_test"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def numeric_test(
    method: str,
    s: sk.NumericSketch,
    hist: sk.WindowHistogram,
    j: int,
    col: tuple[FloatArray, FloatArray] | None,
) -> tuple[float, float, float, float]:
    """``(statistic, p, effect, bound)`` for one numeric column."""
    cur = hist.numeric[j]
    n, m = int(s.ref_counts.sum()), int(cur.sum())
    if method in ("psi", "js"):
        r, c = s.coarse(s.ref_counts), s.coarse(cur)
        value = sk.psi(r, c) if method == "psi" else sk.js_distance(r, c)
        return value, sk.contingency(r, c, g_test=True)[1], value, 0.0
    if method == "ad":
        if col is None:
            a2, norm = sk.ad_from_counts(s.ref_counts, cur)
        else:
            a2, norm = _ad_exact(*col)
        return norm, sk.ad_pvalue(a2), a2 * (n + m) / (n * m), 0.0
    if col is None:
        d, bound = sk.ks_from_counts(s.ref_counts, cur)
    else:
        d, bound = _ks_exact(*col), 0.0
    p = sk.ks_pvalue(d, n, m)
    if method == "ks":
        return d, p, d, bound
    if col is None:
        w = sk.wasserstein_from_counts(
            s.edges,
            s.ref_counts,
            cur,
            min(s.low, float(hist.lows[j])),
            max(s.high, float(hist.highs[j])),
        )
    else:
        w = _wasserstein_exact(*col)
    return w, p, w / s.scale, bound


def categorical_test(method: str, ref: IntArray, cur: IntArray) -> tuple[float, float, float]:
    """``(statistic, p, effect)`` for one categorical column (unseen bin included)."""
    g_stat, g_p, _ = sk.contingency(ref, cur, g_test=True)
    if method == "psi":
        value = sk.psi(ref, cur)
        return value, g_p, value
    if method == "js":
        value = sk.js_distance(ref, cur)
        return value, g_p, value
    stat, p, _ = sk.contingency(ref, cur, g_test=False) if method == "chi2" else (g_stat, g_p, 0)
    total = float(ref.sum() + cur.sum())
    return stat, p, float(np.sqrt(stat / total))


def _ks_exact(ref_sorted: FloatArray, cur: FloatArray) -> float:
    cur_sorted = np.sort(cur)
    both = np.concatenate((ref_sorted, cur_sorted))
    fr = np.searchsorted(ref_sorted, both, side="right") / ref_sorted.size
    fc = np.searchsorted(cur_sorted, both, side="right") / cur_sorted.size
    return float(np.abs(fr - fc).max())


def _wasserstein_exact(ref_sorted: FloatArray, cur: FloatArray) -> float:
    cur_sorted = np.sort(cur)
    both = np.sort(np.concatenate((ref_sorted, cur_sorted)))
    deltas = np.diff(both)
    fr = np.searchsorted(ref_sorted, both[:-1], side="right") / ref_sorted.size
    fc = np.searchsorted(cur_sorted, both[:-1], side="right") / cur_sorted.size
    return float(np.sum(np.abs(fr - fc) * deltas))


def _ad_exact(ref_sorted: FloatArray, cur: FloatArray) -> tuple[float, float]:
    values = np.unique(np.concatenate((ref_sorted, cur)))
    counts = [
        (np.searchsorted(x, values, side="right") - np.searchsorted(x, values, side="left")).astype(
            np.int64
        )
        for x in (ref_sorted, np.sort(cur))
    ]
    return sk.ad_from_counts(counts[0], counts[1])
