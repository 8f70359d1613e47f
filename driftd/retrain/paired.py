"""Paired tests of two models on the same rows: the percentile bootstrap of a metric's
difference, McNemar's test for accuracy and DeLong's test for two correlated ROC AUCs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from driftd.retrain.scores import (
    F64,
    I64,
    Task,
    _as_labels,
    _check_applicable,
    _check_lengths,
    _metric,
    _prepare,
    _require_both_classes,
    _weighted_metric,
)

# Bound on the elements of one (chunk, n) resample block, so memory stays ~tens of MB.
_BLOCK_ELEMENTS = 1 << 21
# McNemar uses the exact binomial test below this many discordant pairs.
_MCNEMAR_EXACT_BELOW = 25

# --------------------------------------------------------------------------------------------
# Paired bootstrap
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``metric(b) - metric(a)``, normalised so positive = ``b`` better.

    ``ci_low``/``ci_high``: two-sided ``1 - alpha`` percentile interval; ``lower_bound``: the
    one-sided ``1 - alpha`` lower bound (the ``alpha`` quantile); ``se``: bootstrap SD.
    """

    metric: str
    higher_is_better: bool
    value_a: float
    value_b: float
    diff: float
    ci_low: float
    ci_high: float
    lower_bound: float
    se: float
    alpha: float
    n: int
    n_boot: int  # resamples with a defined metric (AUC needs both classes)
    method: str = "percentile"


def _resample_counts(rng: np.random.Generator, n: int, size: int) -> F64:
    """Row multiplicities of ``size`` bootstrap resamples: an (size, n) index draw, bincounted."""
    idx = rng.integers(0, n, size=(size, n), dtype=np.int64)
    flat = (idx + n * np.arange(size, dtype=np.int64)[:, None]).ravel()
    return np.bincount(flat, minlength=size * n).reshape(size, n).astype(np.float64)


def _bootstrap_diffs(
    metric: str,
    task: Task,
    y: I64 | F64,
    pred_a: F64 | I64,
    pred_b: F64 | I64,
    n_boot: int,
    seed: int,
) -> F64:
    """Raw ``metric(b) - metric(a)`` over ``n_boot`` paired resamples, drawn in bounded chunks."""
    n = y.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, _BLOCK_ELEMENTS // max(n, 1))
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        counts = _resample_counts(rng, n, size)
        a = _weighted_metric(metric, task, y, pred_a, counts)
        b = _weighted_metric(metric, task, y, pred_b, counts)
        out[start : start + size] = b - a
    return out


def _check_alpha(alpha: float) -> None:
    """``alpha`` must lie in (0, 0.5) so the one- and two-sided bounds make sense."""
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r} is invalid; valid: 0 < alpha < 0.5")


def paired_bootstrap(
    metric: str,
    y: npt.ArrayLike,
    pred_a: npt.ArrayLike,
    pred_b: npt.ArrayLike,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    task: str = "binary",
) -> BootstrapResult:
    """Paired percentile bootstrap of the difference ``b - a`` (``a`` champion, ``b``
    candidate), sign-normalised so positive means ``b`` is better; both models are scored on
    the same resampled rows in every replicate."""
    info = _metric(metric)
    _check_alpha(alpha)
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot!r} is invalid; valid: >= 100")
    t, y_arr, arrays = _prepare(task, y, {"pred_a": pred_a, "pred_b": pred_b})
    a, b = arrays["pred_a"], arrays["pred_b"]
    for name, p in arrays.items():
        _check_applicable(info, t, p, name)
    n = y_arr.shape[0]
    if n < 2:
        raise ValueError(f"paired_bootstrap needs at least 2 rows, got {n}")
    if metric == "roc_auc":
        _require_both_classes(y_arr)
    sign = 1.0 if info.higher_is_better else -1.0
    ones = np.ones((1, n))
    va = float(_weighted_metric(metric, t, y_arr, a, ones)[0])
    vb = float(_weighted_metric(metric, t, y_arr, b, ones)[0])
    diffs = sign * _bootstrap_diffs(metric, t, y_arr, a, b, n_boot, seed)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size < max(100, n_boot // 2):
        raise ValueError(f"only {diffs.size} of {n_boot} resamples had a defined {metric}")
    lo, hi, lb = np.quantile(diffs, [alpha / 2, 1 - alpha / 2, alpha])
    return BootstrapResult(
        metric,
        info.higher_is_better,
        va,
        vb,
        sign * (vb - va),
        float(lo),
        float(hi),
        float(lb),
        float(np.std(diffs, ddof=1)),
        alpha,
        n,
        int(diffs.size),
    )


# --------------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired correctness: ``a_only``/``b_only`` are the discordant counts.

    ``p_value`` is two-sided (``H1``: the error rates differ); ``p_value_greater`` is one-sided
    (``H1``: ``b`` is correct more often). ``statistic`` is the chi-square statistic with
    continuity correction, or ``min(a_only, b_only)`` for the exact test.
    """

    a_only: int
    b_only: int
    statistic: float
    p_value: float
    p_value_greater: float
    exact: bool

    @property
    def method(self) -> str:
        """ "exact binomial" or "chi-square, continuity-corrected"."""
        return "exact binomial" if self.exact else "chi-square, continuity-corrected"


def mcnemar(
    correct_a: npt.ArrayLike, correct_b: npt.ArrayLike, exact: bool | None = None
) -> McNemarResult:
    """McNemar's test of ``a`` against ``b`` on the same rows.

    Exact binomial (``Binomial(a_only + b_only, 1/2)``) when there are fewer than 25 discordant
    pairs (or ``exact=True``); otherwise the chi-square statistic ``(|b-c| - 1)^2 / (b+c)`` with
    continuity correction, as statsmodels computes them.
    """
    ca = np.asarray(correct_a).astype(bool)
    cb = np.asarray(correct_b).astype(bool)
    if ca.ndim != 1 or cb.ndim != 1:
        raise ValueError("correct_a and correct_b must be one-dimensional")
    _check_lengths(correct_a=ca, correct_b=cb)
    a_only = int(np.sum(ca & ~cb))
    b_only = int(np.sum(~ca & cb))
    m = a_only + b_only
    use_exact = m < _MCNEMAR_EXACT_BELOW if exact is None else exact
    if m == 0:
        return McNemarResult(a_only, b_only, 0.0, 1.0, 1.0, use_exact)
    if use_exact:
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(a_only, b_only), m, 0.5)))
        p_greater = float(stats.binom.sf(b_only - 1, m, 0.5))
        return McNemarResult(a_only, b_only, float(min(a_only, b_only)), p, p_greater, True)
    stat = (abs(a_only - b_only) - 1.0) ** 2 / m
    z = (b_only - a_only - 1.0) / math.sqrt(m)  # upper tail with continuity correction
    p = float(stats.chi2.sf(stat, 1))
    return McNemarResult(a_only, b_only, stat, p, float(stats.norm.sf(z)), False)


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DelongResult:
    """Paired DeLong test of two correlated ROC AUCs on the same rows.

    ``diff = auc_b - auc_a``; ``se`` its standard error; ``p_value`` two-sided,
    ``p_value_greater`` one-sided (``H1``: ``b`` better); ``ci_low``/``ci_high`` the two-sided
    ``1 - alpha`` normal interval and ``lower_bound`` the one-sided ``1 - alpha`` bound.
    """

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p_value: float
    p_value_greater: float
    ci_low: float
    ci_high: float
    lower_bound: float
    alpha: float
    n_pos: int
    n_neg: int


def _structural_components(score: F64, pos: npt.NDArray[np.bool_]) -> tuple[float, F64, F64]:
    """AUC and DeLong's structural components V10 (per positive), V01 (per negative).

    Sun & Xu (2014): with midranks ``Tz`` over all rows and ``Tx``/``Ty`` within positives and
    negatives, ``V10 = (Tz_pos - Tx) / n_neg`` and ``V01 = 1 - (Tz_neg - Ty) / n_pos``.
    """
    x, yneg = score[pos], score[~pos]
    m, k = x.size, yneg.size
    tz = stats.rankdata(score)
    tx, ty = stats.rankdata(x), stats.rankdata(yneg)
    auc = (float(tz[pos].sum()) - m * (m + 1) / 2.0) / (m * k)
    v10 = (tz[pos] - tx) / k
    v01 = 1.0 - (tz[~pos] - ty) / m
    return auc, np.asarray(v10, dtype=np.float64), np.asarray(v01, dtype=np.float64)


def _z_and_p(diff: float, se: float) -> tuple[float, float, float]:
    """z statistic, two-sided and upper one-sided p-values; a zero SE gives a degenerate test."""
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    return z, float(2.0 * stats.norm.sf(abs(z))), float(stats.norm.sf(z))


def delong(
    y: npt.ArrayLike, score_a: npt.ArrayLike, score_b: npt.ArrayLike, alpha: float = 0.05
) -> DelongResult:
    """Paired DeLong test of ``AUC(b) - AUC(a)`` (O(n log n) midrank algorithm of Sun & Xu)."""
    _check_alpha(alpha)
    sa = np.asarray(score_a, dtype=np.float64)
    sb = np.asarray(score_b, dtype=np.float64)
    y_raw = np.asarray(y)
    _check_lengths(y=y_raw, score_a=sa, score_b=sb)
    if sa.ndim != 1 or sb.ndim != 1 or not (np.all(np.isfinite(sa)) and np.all(np.isfinite(sb))):
        raise ValueError("score_a and score_b must be one-dimensional and finite")
    y_arr = _as_labels("binary", y_raw, None)
    _require_both_classes(y_arr)
    pos = y_arr == 1
    auc_a, v10a, v01a = _structural_components(sa, pos)
    auc_b, v10b, v01b = _structural_components(sb, pos)
    s10 = np.cov(np.vstack([v10a, v10b])) if v10a.size > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack([v01a, v01b])) if v01a.size > 1 else np.zeros((2, 2))
    cov = s10 / v10a.size + s01 / v01a.size
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    diff = auc_b - auc_a
    z, p, p_greater = _z_and_p(diff, se)
    q2, q1 = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(1 - alpha))
    return DelongResult(
        auc_a,
        auc_b,
        diff,
        se,
        z,
        p,
        p_greater,
        diff - q2 * se,
        diff + q2 * se,
        diff - q1 * se,
        alpha,
        int(pos.sum()),
        int((~pos).sum()),
    )
