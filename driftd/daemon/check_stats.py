"""The statistics of the window checks: one reference sample against one window, per feature.

Every check gives each feature a p-value under "the window comes from the reference's
distribution" and corrects them across the check's features (Holm or Benjamini-Hochberg), so
that a stationary stream raises an alarm in at most ``alpha`` of its windows (Holm), or at
most an ``alpha`` share of the alarms are false (BH):

- ``drift``: ``WindowDrift``'s two-sample test per feature (numeric: KS, AD, PSI, JS or
  Wasserstein on the non-missing values; categorical: chi-square, G, PSI or JS on the stable
  category keys, categories the reference lacks pooled in an "unseen" bin); an alarm also
  needs the effect size to reach the test's floor.
- ``missing``: the window's missing count against the reference's, one-sided: Fisher's
  exact (hypergeometric) test, which accounts for the reference rate being an estimate, and
  a binomial test against ``min_rate`` (an alarm needs both, so a reference with no missing
  value does not alarm on the first one).
- ``out_of_range``: the count of values outside the reference's ``q_low`` and ``q_high``
  order statistics. By exchangeability the probability mass outside two order statistics of
  ``n`` reference values is Beta(a, n + 1 - a) (``a``: the gaps outside), so the count among
  ``m`` is beta-binomial: exact for continuous data whatever the reference's size, where a
  binomial at the nominal rate would ignore the quantiles' own noise (and alarmed in 12 % of
  stationary windows at alpha 0.05 with 4,000 reference rows).
- ``unseen``: the count of the window's values whose category the reference never had, by
  a permutation test (999 seeded relabellings of the pooled values: with many rare
  categories some are new by chance, 91 % of stationary windows alarmed under a plain
  binomial at 0.001) and a binomial test against ``tolerance``; an alarm needs both.
- ``type_errors``: the window's predictions dead-lettered for a feature of the wrong type
  against the reference's (the same two tests as ``missing``, with ``max_rate`` as floor).
- ``multivariate``: a kernel MMD permutation test on the rows complete in every numeric
  feature (standardised by the reference; up to ``max_rows`` rows a side): one p-value for
  the whole row, which sees changes no marginal test sees (a correlation).

Pure: numpy and scipy, no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from driftd.config import WindowCheckSettings
from driftd.detectors.multitest import adjust
from driftd.detectors.window import WindowDrift

F64 = npt.NDArray[np.float64]
ROW = "*"  # the feature name of a multivariate check's single outcome


@dataclass(frozen=True, slots=True)
class Outcome:
    """One feature's result in one window: its p-value (corrected across the check's
    features), the statistic that alarms and its threshold, and the verdict."""

    feature: str
    p_value: float
    p_adjusted: float
    statistic: float  # drift: effect size; rates: the window's rate; multivariate: MMD^2
    threshold: float  # drift: effect floor; rates: the null rate; multivariate: 0
    n: int  # the window's values tested
    drift: bool


def _binomial(k: int, n: int, p0: float) -> float:
    """P(Binomial(n, p0) >= k): the one-sided p-value of ``k`` flagged among ``n``."""
    if k <= 0:
        return 1.0
    return float(stats.binom.sf(k - 1, n, p0))


def _codes(ref: F64, cur: F64) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dense codes of category keys: the reference's in 0..m-1, the window's unseen ones m."""
    seen = np.unique(ref)
    pos = np.searchsorted(seen, cur).clip(0, max(seen.size - 1, 0))
    known = seen[pos] == cur if seen.size else np.zeros(cur.size, bool)
    return np.searchsorted(seen, ref), np.where(known, pos, seen.size)


def rate_test(k: int, n: int, k_ref: int, n_ref: int, min_rate: float) -> tuple[float, float]:
    """(p-value, null rate) of ``k`` flagged of ``n`` against ``k_ref`` of ``n_ref`` in the
    reference: Fisher's exact one-sided test (the reference rate is an estimate too) and a
    binomial against ``min_rate``, the larger p-value (an alarm needs both)."""
    fisher = float(stats.hypergeom.sf(k - 1, n_ref + n, k_ref + k, n)) if k else 1.0
    return max(fisher, _binomial(k, n, min_rate)), max(k_ref / n_ref, min_rate)


def counts_outcome(
    s: WindowCheckSettings, counts: Sequence[float], ref: Sequence[float]
) -> Outcome:
    """A ``type_errors`` window: rejected and accepted predictions against the reference's."""
    k, n = int(counts[0]), int(counts[0] + counts[1])
    p, floor = rate_test(k, n, int(ref[0]), int(ref[0] + ref[1]), s.params.get("max_rate", 0.001))
    return Outcome(ROW, p, p, k / n, floor, n, p <= s.alpha)


def _out_of_range(s: WindowCheckSettings, ref: F64, cur: F64) -> tuple[float, float, float, int]:
    """The beta-binomial test of values outside the ``q_low``/``q_high`` order statistics of
    the sorted reference ``ref``; the threshold is the expected out-of-range rate."""
    n = ref.size
    # 1-based order statistics from each end (1e-9: 0.005 * 5000 is 25, not 25.000...02)
    below = max(1, math.ceil(s.params.get("q_low", 0.005) * n - 1e-9))
    above = max(1, math.ceil((1.0 - s.params.get("q_high", 0.995)) * n - 1e-9))
    lo, hi = ref[below - 1], ref[n - above]
    k = int(((cur < lo) | (cur > hi)).sum())
    a = below + above  # gaps outside [lo, hi] among the n + 1 around n values
    p = float(stats.betabinom.sf(k - 1, cur.size, a, n + 1 - a)) if k else 1.0
    return p, k / cur.size, a / (n + 1), cur.size


def _unseen_permutation(ref: F64, cur: F64, k: int, permutations: int = 999) -> float:
    """P(at least ``k`` unseen) when the pooled values are split at random into a reference
    and a window of their sizes: exchangeability, the null of no new categories.

    Only categories that a random split leaves wholly in the window with probability at least
    1e-12 are simulated (a category of pooled count ``c`` does so with probability
    ``C(m, c) / C(N, c)``); a relabelling draws how many of their values fall in the window
    (hypergeometric), then which.
    """
    _, codes, counts = np.unique(
        np.concatenate([ref, cur]), return_inverse=True, return_counts=True
    )
    big_n, m = codes.size, cur.size
    c = np.arange(int(counts.max()) + 1)
    log_all_in = np.concatenate([[0.0], np.cumsum(np.log(np.maximum(m - c, 1e-300) / (big_n - c)))])
    rare = log_all_in[counts] >= math.log(1e-12)
    rc = codes[rare[codes]]  # the category of each value of a rare category
    if rc.size == 0:
        return 1.0 / (1 + permutations)
    rng = np.random.default_rng(0)  # seeded: the same data give the same p-value
    total = counts
    hits = 0
    for _ in range(permutations):
        h = int(rng.hypergeometric(rc.size, big_n - rc.size, m))
        picked = rc[rng.choice(rc.size, h, replace=False)]
        left = total[picked] - np.bincount(picked, minlength=total.size)[picked]
        hits += int((left == 0).sum()) >= k
    return (1 + hits) / (1 + permutations)


def _drift(
    s: WindowCheckSettings, categorical: bool, ref: F64, cur: F64
) -> tuple[float, float, float]:
    """(p-value, effect size, floor) of one feature's two-sample test."""
    if categorical:
        rc, cc = _codes(ref, cur)
        wd = WindowDrift(
            None,
            categorical=rc[:, None],
            categorical_method=s.categorical_test,
            correction="none",
            categorical_floor=s.params.get("categorical_floor"),
        )
        r = wd.test(None, categorical=cc[:, None]).features[0]
    else:
        wd = WindowDrift(
            ref[:, None], method=s.test, correction="none", floor=s.params.get("floor")
        )
        r = wd.test(cur[:, None]).features[0]
    return r.p_value, r.effect_size, r.threshold


def _one(
    s: WindowCheckSettings, categorical: bool, ref: F64, cur: F64
) -> tuple[float, float, float, int] | None:
    """(p-value, statistic, threshold, n) of one feature, or None when either side has
    fewer than ``min_rows`` values to test."""
    if s.check == "missing":
        if cur.size < s.min_rows or ref.size < s.min_rows:
            return None
        k, k_ref = int(np.isnan(cur).sum()), int(np.isnan(ref).sum())
        p, floor = rate_test(k, cur.size, k_ref, ref.size, s.params.get("min_rate", 0.001))
        return p, k / cur.size, floor, cur.size
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if cur.size < s.min_rows or ref.size < s.min_rows:
        return None
    if s.check == "drift":
        p, effect, floor = _drift(s, categorical, ref, cur)
        return p, effect, floor, cur.size
    if s.check == "out_of_range":
        return _out_of_range(s, np.sort(ref), cur)
    # unseen
    tolerance = s.params.get("tolerance", 0.001)
    k = int((~np.isin(cur, np.unique(ref))).sum())
    p = _binomial(k, cur.size, tolerance)
    if p <= s.alpha:  # above alpha no correction can make it alarm: skip the permutations
        p = max(p, _unseen_permutation(ref, cur, k))
    return p, k / cur.size, tolerance, cur.size


def _multivariate(s: WindowCheckSettings, ref: F64, cur: F64) -> list[Outcome]:
    from driftd.detectors.multivariate import MMD  # imports torch: only here

    rows = int(s.params.get("max_rows", 2_000))
    ref = ref[~np.isnan(ref).any(axis=1)][:rows]
    cur = cur[~np.isnan(cur).any(axis=1)][:rows]
    if len(ref) < s.min_rows or len(cur) < s.min_rows:
        return []
    mu, sd = ref.mean(axis=0), ref.std(axis=0)
    sd[sd == 0] = 1.0  # a constant column: any change of it still separates the samples
    perms = int(s.params.get("n_permutations", 500))
    test = MMD((ref - mu) / sd, n_permutations=perms, alpha=s.alpha, device="cpu")
    r = test.test((cur - mu) / sd)
    return [Outcome(ROW, r.p_value, r.p_value, r.statistic, 0.0, len(cur), False)]


def raw_outcomes(
    s: WindowCheckSettings,
    names: Sequence[str],
    categorical: Sequence[bool],
    reference: F64,
    window: F64,
) -> list[Outcome]:
    """Each feature's (column's) test of ``window`` against ``reference``, uncorrected and
    undecided; features with too few values on either side are left out."""
    if s.check == "multivariate":
        return _multivariate(s, reference, window)
    return [
        Outcome(name, r[0], r[0], r[1], r[2], r[3], False)
        for j, name in enumerate(names)
        if (r := _one(s, categorical[j], reference[:, j], window[:, j])) is not None
    ]


def decide(s: WindowCheckSettings, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Correct the p-values across ``outcomes`` (every feature of every population tested in
    one window) and decide each: corrected p <= alpha, and for drift an effect over its floor."""
    if not outcomes:
        return []
    p_adj = adjust([o.p_value for o in outcomes], s.correction)
    return [
        Outcome(
            o.feature,
            o.p_value,
            float(pa),
            o.statistic,
            o.threshold,
            o.n,
            bool(pa <= s.alpha and (s.check != "drift" or o.statistic >= o.threshold)),
        )
        for o, pa in zip(outcomes, p_adj.tolist(), strict=True)
    ]


def evaluate(
    s: WindowCheckSettings,
    names: Sequence[str],
    categorical: Sequence[bool],
    reference: F64,
    window: F64,
) -> list[Outcome]:
    """Test each feature of ``window`` against ``reference``, corrected across features."""
    return decide(s, raw_outcomes(s, names, categorical, reference, window))
