"""Multiple-testing control across features: Holm (FWER) and Benjamini-Hochberg (FDR).

Both take a vector of p-values, which may hold NaN for tests that produced none; NaN entries are
left out of the family (they neither count towards ``m`` nor get rejected).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Correction", "adjust", "benjamini_hochberg", "holm"]

Correction = Literal["holm", "bh", "none"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _finite(p: npt.ArrayLike) -> tuple[FloatArray, FloatArray, npt.NDArray[np.intp]]:
    p_arr = np.asarray(p, dtype=np.float64)
    out = np.full(p_arr.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p_arr))
    return out, p_arr[idx], idx


def holm(p: npt.ArrayLike) -> FloatArray:
    """Holm step-down adjusted p-values: controls the family-wise error rate.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    out, pv, idx = _finite(p)
    m = pv.size
    if m == 0:
        return out
    order = np.argsort(pv, kind="stable")
    scaled = (m - np.arange(m)) * pv[order]
    adj = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out[idx[order]] = adj
    return out


def benjamini_hochberg(p: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg step-up adjusted p-values (q-values): controls the false discovery rate.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    out, pv, idx = _finite(p)
    m = pv.size
    if m == 0:
        return out
    order = np.argsort(pv, kind="stable")
    scaled = m * pv[order] / np.arange(1, m + 1)
    adj = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out[idx[order]] = adj
    return out


def adjust(p: npt.ArrayLike, correction: Correction) -> FloatArray:
    """Adjusted p-values under ``correction``; ``"none"`` returns the p-values unchanged."""
    if correction == "holm":
        return holm(p)
    if correction == "bh":
        return benjamini_hochberg(p)
    return np.asarray(p, dtype=np.float64).copy()
