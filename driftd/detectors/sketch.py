"""Reference sketches and mergeable window histograms for the window drift tests.

A reference column is summarised once: a numeric column by ``n_bins`` reference-quantile bin
edges (and the reference's counts in those bins), a categorical column by its category counts.
A current window is then reduced to counts in the same bins (one sort, then ``n_bins`` binary
searches per column; the sort is numpy's vectorised one, ~12 ms per 10^6 values here), and the
summary is O(n_bins) memory whatever the window's length. The counts are a
:class:`WindowHistogram`, which *merges by addition*: histograms built on partitions of a window
(per Kafka partition, per worker) combine into the histogram of the whole window, and a drift
test on the merged histogram equals a sketch-mode test on the concatenated window.

The two-sample statistics computed from counts live here too. Binning discards the order of
values inside a bin, so a binned KS distance ``D_b`` is a lower bound on the exact one::

    D_b <= D <= D_b + max_j max(r_j / n, c_j / m)

(``r_j``, ``c_j``: reference and current counts in bin ``j``). With 2,048 reference-quantile bins
the reference mass per bin is ~1/2,048 ~ 0.0005, and a smaller statistic gives a larger p-value,
so the sketch test is slightly conservative: it never raises the false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "CategoricalSketch",
    "NumericSketch",
    "WindowHistogram",
    "ad_from_counts",
    "ad_pvalue",
    "contingency",
    "js_distance",
    "ks_from_counts",
    "ks_pvalue",
    "psi",
    "wasserstein_from_counts",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = 1e-6  # floor on bin proportions for PSI, so an empty bin does not give infinity


@dataclass(frozen=True, slots=True)
class NumericSketch:
    """Reference quantile bins of one numeric column, built once from the reference."""

    edges: FloatArray  # interior bin edges, sorted and unique; len(edges) + 1 bins
    ref_counts: IntArray
    coarse_map: IntArray  # fine bin -> coarse (PSI / JS) bin
    n_coarse: int
    scale: float  # reference standard deviation (1.0 for a constant column)
    low: float
    high: float

    @classmethod
    def from_reference(cls, values: FloatArray, n_bins: int, n_coarse: int) -> NumericSketch:
        """Sketch a reference column into ``n_bins`` fine and ``n_coarse`` coarse quantile bins."""
        ordered = np.sort(values)
        edges = np.unique(_quantiles(ordered, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
        ref_counts = _bin_counts(ordered, edges)
        # Coarse edges are a subset of the fine ones, so coarse counts are exact sums of fine ones.
        coarse_levels = np.linspace(0.0, 1.0, n_coarse + 1)[1:-1]
        pick = np.searchsorted(edges, _quantiles(ordered, coarse_levels), side="left")
        coarse_edges = (
            np.unique(edges[np.clip(pick, 0, max(edges.size - 1, 0))]) if edges.size else edges
        )
        left = np.concatenate(([-np.inf], edges))
        coarse_map = np.searchsorted(coarse_edges, left, side="right").astype(np.int64)
        sd = float(np.std(values))
        return cls(
            edges,
            ref_counts,
            coarse_map,
            int(coarse_edges.size + 1),
            sd if sd > 0.0 else 1.0,
            float(values.min()),
            float(values.max()),
        )

    def counts(self, values: FloatArray) -> IntArray:
        """Counts of ``values`` in the fine bins."""
        return _bin_counts(np.sort(values), self.edges)

    def coarse(self, counts: IntArray) -> IntArray:
        """Fine-bin counts summed into the coarse bins."""
        return np.bincount(self.coarse_map, weights=counts, minlength=self.n_coarse).astype(
            np.int64
        )


def _bin_counts(ordered: FloatArray, edges: FloatArray) -> IntArray:
    """Counts in ``[e_(i-1), e_i)`` from sorted values: a SIMD sort plus ``len(edges)`` binary
    searches beats ``searchsorted`` of every value into the edges by ~10x at 10^6 values."""
    below = np.searchsorted(ordered, edges, side="left")
    return np.diff(below, prepend=0, append=ordered.size).astype(np.int64)


def _quantiles(ordered: FloatArray, levels: FloatArray) -> FloatArray:
    """``np.quantile(x, levels)`` (linear method) from sorted ``x``; avoids 2,000 partitions."""
    pos = levels * (ordered.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    out: FloatArray = ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])
    return out


@dataclass(frozen=True, slots=True)
class CategoricalSketch:
    """Category counts of one integer-coded column; codes absent from the reference are unseen."""

    categories: IntArray  # known codes, sorted
    ref_counts: IntArray  # per known code, then 0 for the unseen bin
    lookup: IntArray  # code -> bin index; the last bin is "unseen"

    @classmethod
    def from_reference(cls, codes: IntArray) -> CategoricalSketch:
        """Count the categories of a reference column of non-negative integer codes."""
        categories, ref = np.unique(codes, return_counts=True)
        lookup = np.full(int(categories.max()) + 2, categories.size, dtype=np.int64)
        lookup[categories] = np.arange(categories.size)
        return cls(categories, np.append(ref, 0).astype(np.int64), lookup)

    def counts(self, codes: IntArray) -> IntArray:
        """Counts per known category, with every unseen code pooled in the last bin."""
        # Out-of-range codes (negative or above the largest known) map to the unseen slot.
        safe = np.where((codes >= 0) & (codes < self.lookup.size), codes, self.lookup.size - 1)
        return np.bincount(self.lookup[safe], minlength=self.categories.size + 1).astype(np.int64)


@dataclass(frozen=True, slots=True)
class WindowHistogram:
    """Counts of a current window in the reference's bins; merge partitions with ``merge``.

    Examples
    --------
    >>> a = WindowHistogram(2, (np.array([1, 1]),), (), np.array([0.0]), np.array([1.0]))
    >>> b = WindowHistogram(1, (np.array([0, 1]),), (), np.array([-1.0]), np.array([0.5]))
    >>> m = a.merge(b)
    >>> m.n, m.numeric[0].tolist(), m.lows.tolist()
    (3, [1, 2], [-1.0])
    """

    n: int
    numeric: tuple[IntArray, ...]
    categorical: tuple[IntArray, ...]
    lows: FloatArray  # per numeric column, for Wasserstein's outer bins
    highs: FloatArray

    def merge(self, other: WindowHistogram) -> WindowHistogram:
        """The histogram of both windows together (bins must come from the same reference)."""
        return WindowHistogram(
            self.n + other.n,
            tuple(a + b for a, b in zip(self.numeric, other.numeric, strict=True)),
            tuple(a + b for a, b in zip(self.categorical, other.categorical, strict=True)),
            np.minimum(self.lows, other.lows),
            np.maximum(self.highs, other.highs),
        )


def ks_from_counts(ref: IntArray, cur: IntArray) -> tuple[float, float]:
    """Binned KS distance and the bound on its gap to the exact distance (see module doc)."""
    r = ref / ref.sum()
    c = cur / cur.sum()
    d = float(np.abs(np.cumsum(r) - np.cumsum(c)).max())
    return d, float(np.maximum(r, c).max())


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS p-value, as ``scipy.stats.ks_2samp(method="asymp")``."""
    en = n * m / (n + m)
    return float(stats.kstwo.sf(d, np.round(en)))


def ad_from_counts(ref: IntArray, cur: IntArray) -> tuple[float, float]:
    """k=2 Anderson-Darling (Scholz-Stephens midrank A2akN) from counts over ordered values.

    Returns ``(A2akN, normalised)``; ``normalised`` is scipy ``anderson_ksamp``'s statistic.
    """
    keep = (ref + cur) > 0
    a = ref[keep].astype(np.float64)
    b = cur[keep].astype(np.float64)
    n1, n2 = a.sum(), b.sum()
    big_n = n1 + n2
    lj = a + b
    bj = np.cumsum(lj) - lj / 2.0
    denom = bj * (big_n - bj) - big_n * lj / 4.0
    total = 0.0
    for f, ni in ((a, n1), (b, n2)):
        mij = np.cumsum(f) - f / 2.0
        total += float((lj / big_n * (big_n * mij - bj * ni) ** 2 / denom).sum()) / ni
    a2 = total * (big_n - 1.0) / big_n
    return a2, (a2 - 1.0) / math.sqrt(_ad_variance(int(n1), int(n2)))


def _ad_variance(n1: int, n2: int) -> float:
    """Variance of A2akN under the null for k=2 (Scholz and Stephens 1987, eq. 4)."""
    big_n, k = n1 + n2, 2
    hh = 1.0 / n1 + 1.0 / n2
    hs_cs = np.cumsum(1.0 / np.arange(big_n - 1, 1, -1))
    h = float(hs_cs[-1]) + 1.0
    g = float((hs_cs / np.arange(2, big_n)).sum())
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * hh
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * hh - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * hh + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    return (a * big_n**3 + b * big_n**2 + c * big_n + d) / (
        (big_n - 1.0) * (big_n - 2.0) * (big_n - 3.0)
    )


def ad_pvalue(a2: float) -> float:
    """Upper tail of the limiting A2akN law for two samples (Marsaglia & Marsaglia 2004).

    Unlike scipy's table interpolation, this is not capped at [0.001, 0.25], so it can enter a
    multiple-testing correction.
    """
    z = a2
    if z <= 0.0:
        return 1.0
    if z < 2.0:
        cdf = (
            math.exp(-1.2337141 / z)
            / math.sqrt(z)
            * (
                2.00012
                + (0.247105 - (0.0649821 - (0.0347962 - (0.011672 - 0.00168691 * z) * z) * z) * z)
                * z
            )
        )
    else:
        cdf = math.exp(
            -math.exp(
                1.0776
                - (2.30695 - (0.43424 - (0.082433 - (0.008056 - 0.0003146 * z) * z) * z) * z) * z
            )
        )
    return min(max(1.0 - cdf, 0.0), 1.0)


def contingency(ref: IntArray, cur: IntArray, g_test: bool) -> tuple[float, float, int]:
    """2 x K homogeneity test: ``(statistic, p, dof)``, as ``scipy.stats.chi2_contingency``.

    Columns empty in both samples are dropped; no continuity correction is applied.
    """
    keep = (ref + cur) > 0
    obs = np.vstack((ref[keep], cur[keep])).astype(np.float64)
    dof = obs.shape[1] - 1
    if dof < 1:
        return 0.0, 1.0, 0
    expected = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    if g_test:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(obs > 0, obs * np.log(obs / expected), 0.0)
        stat = 2.0 * float(terms.sum())
    else:
        stat = float(((obs - expected) ** 2 / expected).sum())
    return stat, float(stats.chi2.sf(stat, dof)), dof


def psi(ref: IntArray, cur: IntArray) -> float:
    """Population stability index, sum((c - r) ln(c / r)), with proportions floored at 1e-6."""
    r = np.maximum(ref / ref.sum(), _EPS)
    c = np.maximum(cur / cur.sum(), _EPS)
    return float(((c - r) * np.log(c / r)).sum())


def js_distance(ref: IntArray, cur: IntArray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the two binned distributions."""
    r = ref / ref.sum()
    c = cur / cur.sum()
    mid = (r + c) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_r = np.where(r > 0, r * np.log2(r / mid), 0.0).sum()
        kl_c = np.where(c > 0, c * np.log2(c / mid), 0.0).sum()
    return math.sqrt(max(float(kl_r + kl_c) / 2.0, 0.0))


def wasserstein_from_counts(
    edges: FloatArray, ref: IntArray, cur: IntArray, low: float, high: float
) -> float:
    """W1 from binned CDFs, each bin's mass spread uniformly; outer bins end at ``low``/``high``."""
    bounds = np.concatenate(
        (
            [min(low, edges[0] if edges.size else low)],
            edges,
            [max(high, edges[-1] if edges.size else high)],
        )
    )
    widths = np.diff(bounds)
    fr = np.cumsum(ref / ref.sum())
    fc = np.cumsum(cur / cur.sum())
    gap_right = fr - fc
    gap_left = np.concatenate(([0.0], gap_right[:-1]))
    # |F - G| is linear inside a bin; integrate it exactly, including a sign change.
    same = gap_left * gap_right >= 0
    area_same = np.abs(gap_left + gap_right) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        area_cross = (gap_left**2 + gap_right**2) / (2.0 * np.abs(gap_left - gap_right))
    area = np.where(same, area_same, area_cross)
    return float((area * widths).sum())
