"""Champion/challenger evaluation: paired statistics on one holdout window and a promotion gate.

Both models are scored on the *same* holdout rows (the window's hash is recorded), so every
comparison is paired: the unit of resampling is a row, and each bootstrap resample scores the
champion and the candidate on identical rows. For every metric the paired difference is
normalised so that **positive means the candidate is better** (``candidate - champion`` for
metrics where higher is better, ``champion - candidate`` for losses), with a percentile
bootstrap confidence interval. Accuracy additionally gets McNemar's test and ROC AUC (binary
tasks) the paired DeLong test, whose normal interval replaces the bootstrap one for the gate.

Metrics (higher is better: ``accuracy``, ``roc_auc``; lower is better: ``log_loss``, ``brier``,
``rmse``, ``mae``):

* binary -- ``y`` in {0, 1}, prediction = P(class 1): accuracy (threshold 0.5), roc_auc,
  log_loss, brier (mean squared error of the probability);
* multiclass -- ``y`` a class code 0..K-1, prediction an (n, K) probability matrix (accuracy of
  the argmax, log_loss, brier summed over classes) or a vector of predicted codes (accuracy);
* regression -- rmse, mae.

The gate (``GateSpec``) and how the false-promotion rate is controlled
----------------------------------------------------------------------
Let ``d`` be the true (population) normalised difference of a metric and ``L`` its one-sided
``1 - alpha`` lower confidence bound (the ``alpha`` quantile of the bootstrap distribution of the
difference; ``diff - z_{1-alpha} * se`` for DeLong). The candidate is promoted iff all hold:

1. ``n >= min_samples``;
2. primary metric: ``L_primary > min_gain`` (strictly; ``min_gain >= 0``). For accuracy the
   one-sided exact/continuity-corrected McNemar p-value for "candidate better" must also be
   ``<= alpha`` (it is exact where the percentile bootstrap of a few discordant pairs is not);
3. every guard metric ``g``: ``L_g > -margin_g``.

Condition 2 is a one-sided level-``alpha`` test of ``H0: d_primary <= min_gain``. When the two
models are truly equal, ``d_primary = 0 <= min_gain`` lies in ``H0``, so
``P(promote) <= P(L_primary > min_gain) <= P(L_primary > 0) ~= alpha`` (asymptotically for the
bootstrap and DeLong; adding the McNemar condition or any guard can only lower it). The whole
gate is an intersection-union test (promote only when every null is rejected at ``alpha``), which
keeps the level at ``alpha`` without a multiplicity correction. The issue's wording "better by
>= min_gain with the CI's lower bound > -margin" is implied by this rule (``L > min_gain`` gives
``diff >= L > min_gain >= 0 >= -margin``); the weaker reading, ``L > -margin`` on its own,
would promote an exactly equal candidate with probability about ``1 - alpha`` and is therefore
not used for the primary metric. ``GateSpec.margin`` is the non-inferiority margin of guards
that do not name their own. A guard with margin 0 demands proven superiority on that metric.
"""

from __future__ import annotations

import hashlib
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "METRICS",
    "BootstrapResult",
    "DelongResult",
    "Evaluation",
    "GateSpec",
    "McNemarResult",
    "MetricComparison",
    "MetricInfo",
    "Task",
    "applicable_metrics",
    "delong",
    "evaluate",
    "fingerprint",
    "mcnemar",
    "metric_value",
    "paired_bootstrap",
    "per_row",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Task = Literal["binary", "multiclass", "regression"]
TestName = Literal["bootstrap", "mcnemar", "delong"]

TASKS: tuple[str, ...] = get_args(Task)
# Probabilities are clipped to [EPS, 1 - EPS] inside log_loss so one confident miss is finite.
EPS = 1e-15
# Bound on the elements of one (chunk, n) resample block, so memory stays ~tens of MB.
_BLOCK_ELEMENTS = 1 << 21
# McNemar uses the exact binomial test below this many discordant pairs.
_MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is, whether higher is better, and which tasks it applies to."""

    name: str
    higher_is_better: bool
    tasks: frozenset[str]
    needs_proba: bool  # False: defined on predicted labels/values too
    decomposable: bool  # metric = finish(mean of per-row values)


METRICS: Mapping[str, MetricInfo] = types.MappingProxyType(
    {
        "accuracy": MetricInfo("accuracy", True, frozenset({"binary", "multiclass"}), False, True),
        "roc_auc": MetricInfo("roc_auc", True, frozenset({"binary"}), True, False),
        "log_loss": MetricInfo("log_loss", False, frozenset({"binary", "multiclass"}), True, True),
        "brier": MetricInfo("brier", False, frozenset({"binary", "multiclass"}), True, True),
        "rmse": MetricInfo("rmse", False, frozenset({"regression"}), False, True),
        "mae": MetricInfo("mae", False, frozenset({"regression"}), False, True),
    }
)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _metric(name: str) -> MetricInfo:
    """Look a metric up, failing with the list of known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def _task(task: str) -> Task:
    """Validate a task name."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is invalid; valid: {list(TASKS)}")
    return task  # type: ignore[return-value]


def _check_lengths(**arrays: npt.NDArray[Any]) -> int:
    """Raise a ValueError naming the arrays whose row counts differ; return the common count."""
    lengths = {name: int(a.shape[0]) if a.ndim else 0 for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {k} rows" for name, k in lengths.items())
        raise ValueError(f"row counts differ: {detail}")
    return next(iter(lengths.values()))


def _as_labels(task: Task, y: npt.ArrayLike, n_classes: int | None) -> I64 | F64:
    """Validate ``y`` for ``task``: {0,1} for binary, codes < K for multiclass, finite floats."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {arr.shape}")
    if task == "regression":
        out = arr.astype(np.float64)
        if not np.all(np.isfinite(out)):
            raise ValueError("y holds NaN or infinite values")
        return out
    out_f = arr.astype(np.float64)
    if not np.all(np.isfinite(out_f)) or np.any(out_f != np.round(out_f)) or np.any(out_f < 0):
        raise ValueError(f"y must hold non-negative integer class codes for task={task!r}")
    codes = out_f.astype(np.int64)
    top = 2 if task == "binary" else n_classes
    if top is not None and codes.size and int(codes.max()) >= top:
        raise ValueError(f"y holds class code {int(codes.max())}; expected codes < {top}")
    return codes


def _is_codes(pred: npt.NDArray[Any]) -> bool:
    """A one-dimensional integer-valued prediction is a vector of predicted class codes."""
    return pred.ndim == 1 and (
        np.issubdtype(pred.dtype, np.integer) or np.issubdtype(pred.dtype, np.bool_)
    )


def _as_pred(task: Task, pred: npt.ArrayLike, name: str) -> F64 | I64:
    """Validate a prediction: P(class 1), an (n, K) proba matrix or codes, or real values."""
    arr = np.asarray(pred)
    if task == "multiclass" and _is_codes(arr):
        if arr.size and int(arr.min()) < 0:
            raise ValueError(f"{name} holds negative class codes")
        return arr.astype(np.int64)
    out = arr.astype(np.float64)
    want_ndim = 2 if task == "multiclass" else 1
    if out.ndim != want_ndim:
        raise ValueError(f"{name} must be {want_ndim}-dimensional for task={task!r}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} holds NaN or infinite values")
    if task != "regression" and (np.any(out < 0) or np.any(out > 1)):
        raise ValueError(f"{name} must hold probabilities in [0, 1] for task={task!r}")
    if task == "multiclass" and not np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"the rows of {name} must sum to 1")
    return out


def _prepare(
    task: str, y: npt.ArrayLike, preds: Mapping[str, npt.ArrayLike]
) -> tuple[Task, I64 | F64, dict[str, F64 | I64]]:
    """Validate the task, labels and named predictions together; equal row counts enforced."""
    t = _task(task)
    arrays = {name: _as_pred(t, p, name) for name, p in preds.items()}
    y_raw = np.asarray(y)
    _check_lengths(y=y_raw, **arrays)
    n_classes = max((a.shape[1] for a in arrays.values() if a.ndim == 2), default=None)
    return t, _as_labels(t, y_raw, n_classes), arrays


def applicable_metrics(task: str, pred: npt.ArrayLike) -> tuple[str, ...]:
    """The metrics that can be computed for ``task`` from predictions shaped like ``pred``."""
    t = _task(task)
    codes = t == "multiclass" and _is_codes(np.asarray(pred))
    return tuple(m.name for m in METRICS.values() if t in m.tasks and not (codes and m.needs_proba))


def _check_applicable(metric: MetricInfo, task: Task, pred: npt.NDArray[Any], name: str) -> None:
    """Raise if ``metric`` cannot be computed for ``task`` from ``pred``."""
    if metric.name not in applicable_metrics(task, pred):
        raise ValueError(
            f"metric {metric.name!r} does not apply to task={task!r} with {name} of shape "
            f"{pred.shape} and dtype {pred.dtype}; applicable: {applicable_metrics(task, pred)}"
        )


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _predicted_class(task: Task, pred: F64 | I64) -> I64:
    """Predicted class: score >= 0.5 for binary, argmax of a proba matrix, or the codes."""
    if task == "binary":
        return (pred >= 0.5).astype(np.int64)
    if pred.ndim == 2:
        return np.asarray(np.argmax(pred, axis=1), dtype=np.int64)
    return pred.astype(np.int64)


def _rows(metric: str, task: Task, y: I64 | F64, pred: F64 | I64) -> F64:
    """Per-row values of a decomposable metric on validated inputs."""
    if metric == "accuracy":
        return np.asarray(_predicted_class(task, pred) == y, dtype=np.float64)
    if metric in ("rmse", "mae"):
        err = pred.astype(np.float64) - y
        return err * err if metric == "rmse" else np.abs(err)
    if task == "binary":
        p = pred.astype(np.float64)
        if metric == "brier":
            return (p - y) ** 2
        p_true = np.where(y == 1, p, 1.0 - p)
    else:
        onehot = np.eye(pred.shape[1])[y.astype(np.int64)]
        if metric == "brier":
            return np.asarray(((pred - onehot) ** 2).sum(axis=1), dtype=np.float64)
        p_true = pred[np.arange(len(y)), y.astype(np.int64)]
    return np.asarray(-np.log(np.clip(p_true, EPS, 1.0 - EPS)), dtype=np.float64)


def _finish(metric: str, mean: F64) -> F64:
    """Turn mean per-row values into the metric (square root for rmse, identity otherwise)."""
    return np.sqrt(mean) if metric == "rmse" else mean


def per_row(metric: str, task: str, y: npt.ArrayLike, pred: npt.ArrayLike) -> F64:
    """Per-row contributions of a decomposable metric (rmse: squared errors; the metric is
    ``sqrt`` of their mean, every other one their mean). ROC AUC has none and raises."""
    info = _metric(metric)
    if not info.decomposable:
        raise ValueError(f"metric {metric!r} is not a mean of per-row values")
    t, y_arr, arrays = _prepare(task, y, {"pred": pred})
    _check_applicable(info, t, arrays["pred"], "pred")
    return _rows(metric, t, y_arr, arrays["pred"])


def _auc_weighted(y: I64 | F64, score: F64, counts: F64) -> F64:
    """ROC AUC of ``score`` under each row of ``counts`` (row multiplicities, shape (B, n)).

    Rank-based (Mann-Whitney with ties counted half), vectorised over resamples: after one sort
    the positive and negative weights of each tie group are summed, and every positive group
    earns the negative weight strictly below it plus half of the tied negative weight.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = counts[:, order]
    is_pos = y[order] == 1
    pos = np.add.reduceat(np.where(is_pos, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(is_pos, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _require_both_classes(y: I64 | F64) -> None:
    """ROC AUC is undefined unless both classes occur."""
    present = np.unique(y)
    if present.size < 2:
        only = f"only class {int(present[0])}" if present.size else "no rows"
        raise ValueError(f"roc_auc is undefined: y holds {only}; it needs both classes")


def _weighted_metric(metric: str, task: Task, y: I64 | F64, pred: F64 | I64, counts: F64) -> F64:
    """The metric under each row of resample multiplicities ``counts`` (shape (B, n))."""
    if metric == "roc_auc":
        return _auc_weighted(y, pred.astype(np.float64), counts)
    rows = _rows(metric, task, y, pred)
    return _finish(metric, counts @ rows / counts.sum(axis=1))


def metric_value(metric: str, task: str, y: npt.ArrayLike, pred: npt.ArrayLike) -> float:
    """The metric of one model on the whole sample."""
    info = _metric(metric)
    t, y_arr, arrays = _prepare(task, y, {"pred": pred})
    _check_applicable(info, t, arrays["pred"], "pred")
    if metric == "roc_auc":
        _require_both_classes(y_arr)
    ones = np.ones((1, y_arr.shape[0]))
    return float(_weighted_metric(metric, t, y_arr, arrays["pred"], ones)[0])


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


# --------------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateSpec:
    """Promotion gate: see the module docstring for the exact rule and its error control.

    ``guards`` maps a guard metric to its non-inferiority margin (``None``: use ``margin``);
    all gains and margins are in the metric's own units, positive meaning candidate better.
    """

    primary: str
    min_gain: float = 0.0
    margin: float = 0.0
    alpha: float = 0.05
    guards: Mapping[str, float | None] = field(default_factory=dict)
    min_samples: int = 200
    n_boot: int = 2000

    def __post_init__(self) -> None:
        """Validate every field and freeze ``guards``."""
        _metric(self.primary)
        _check_alpha(self.alpha)
        for name, value in (("min_gain", self.min_gain), ("margin", self.margin)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}={value!r} is invalid; valid: finite and >= 0")
        for metric, m in self.guards.items():
            _metric(metric)
            if metric == self.primary:
                raise ValueError(f"guard {metric!r} is also the primary metric")
            if m is not None and not (math.isfinite(m) and m >= 0):
                raise ValueError(f"guard margin {metric}={m!r} is invalid; valid: finite, >= 0")
        if self.min_samples < 2:
            raise ValueError(f"min_samples={self.min_samples!r} is invalid; valid: >= 2")
        if self.n_boot < 100:
            raise ValueError(f"n_boot={self.n_boot!r} is invalid; valid: >= 100")
        object.__setattr__(self, "guards", types.MappingProxyType(dict(self.guards)))

    def guard_margin(self, metric: str) -> float:
        """The non-inferiority margin of a guard metric."""
        m = self.guards[metric]
        return self.margin if m is None else float(m)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage."""
        return {
            "primary": self.primary,
            "min_gain": self.min_gain,
            "margin": self.margin,
            "alpha": self.alpha,
            "guards": {k: self.guard_margin(k) for k in self.guards},
            "min_samples": self.min_samples,
            "n_boot": self.n_boot,
        }


@dataclass(frozen=True)
class MetricComparison:
    """One metric for both models, the normalised difference (positive = candidate better).

    ``ci_low``/``ci_high`` (two-sided ``1 - alpha``) and ``lower_bound`` (one-sided, used by
    the gate) come from DeLong for roc_auc and from the bootstrap otherwise; the bootstrap
    interval is always kept in ``bootstrap_ci``. ``p_value``/``p_value_greater`` are
    McNemar's (accuracy) or DeLong's (roc_auc), ``None`` for the bootstrap. ``error`` says why
    a metric could not be computed (its numbers are then NaN).
    """

    metric: str
    higher_is_better: bool
    champion: float
    candidate: float
    diff: float
    ci_low: float
    ci_high: float
    lower_bound: float
    bootstrap_ci: tuple[float, float]
    test: TestName
    p_value: float | None = None
    p_value_greater: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """The decision, its reasons and every number behind it, to be stored with the candidate."""

    task: Task
    n: int
    holdout_hash: str
    seed: int
    spec: GateSpec
    metrics: Mapping[str, MetricComparison]
    promote: bool
    reasons: tuple[str, ...]

    @property
    def primary(self) -> MetricComparison:
        """The comparison of the primary metric."""
        return self.metrics[self.spec.primary]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (non-finite numbers become ``None``)."""
        return {
            "task": self.task,
            "n": self.n,
            "holdout_hash": self.holdout_hash,
            "seed": self.seed,
            "spec": self.spec.to_dict(),
            "promote": self.promote,
            "reasons": list(self.reasons),
            "test": self.primary.test,
            "metrics": {k: _jsonable(asdict(v)) for k, v in self.metrics.items()},
        }


def _jsonable(obj: Any) -> Any:
    """Tuples to lists, non-finite floats to None, numpy scalars to Python ones."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def fingerprint(*arrays: npt.ArrayLike) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes: identifies a holdout window."""
    h = hashlib.sha256()
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a))
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _compare(
    metric: str,
    task: Task,
    y: I64 | F64,
    champ: F64 | I64,
    cand: F64 | I64,
    spec: GateSpec,
    seed: int,
) -> MetricComparison:
    """Bootstrap one metric, plus McNemar (accuracy) or DeLong (binary roc_auc)."""
    boot = paired_bootstrap(metric, y, champ, cand, spec.n_boot, seed, spec.alpha, task=task)
    base = MetricComparison(
        metric,
        boot.higher_is_better,
        boot.value_a,
        boot.value_b,
        boot.diff,
        boot.ci_low,
        boot.ci_high,
        boot.lower_bound,
        (boot.ci_low, boot.ci_high),
        "bootstrap",
    )
    if metric == "accuracy":
        correct_a = _predicted_class(task, champ) == y
        mc = mcnemar(correct_a, _predicted_class(task, cand) == y)
        return replace(base, test="mcnemar", p_value=mc.p_value, p_value_greater=mc.p_value_greater)
    if metric == "roc_auc":
        d = delong(y, champ, cand, spec.alpha)
        return replace(
            base,
            test="delong",
            diff=d.diff,
            ci_low=d.ci_low,
            ci_high=d.ci_high,
            lower_bound=d.lower_bound,
            p_value=d.p_value,
            p_value_greater=d.p_value_greater,
        )
    return base


def _failed(metric: str, higher: bool, test: TestName, reason: str) -> MetricComparison:
    """A comparison that could not be computed, with NaN numbers and the reason."""
    nan = math.nan
    return MetricComparison(
        metric, higher, nan, nan, nan, nan, nan, nan, (nan, nan), test, error=reason
    )


def _test_of(metric: str) -> TestName:
    """The test reported for a metric."""
    return {"accuracy": "mcnemar", "roc_auc": "delong"}.get(metric, "bootstrap")  # type: ignore[return-value]


def _safe_compare(
    metric: str,
    task: Task,
    y: I64 | F64,
    champ: F64 | I64,
    cand: F64 | I64,
    spec: GateSpec,
    seed: int,
) -> MetricComparison:
    """``_compare``, turning a data problem (e.g. a single class for AUC) into ``error``."""
    try:
        return _compare(metric, task, y, champ, cand, spec, seed)
    except ValueError as exc:
        return _failed(metric, METRICS[metric].higher_is_better, _test_of(metric), str(exc))


def _primary_reasons(c: MetricComparison, spec: GateSpec) -> list[str]:
    """Why the primary metric does not justify promotion (empty when it does)."""
    level = f"one-sided {100 * (1 - spec.alpha):g}%"
    if c.error is not None:
        return [f"primary {c.metric}: not computable ({c.error})"]
    out: list[str] = []
    if not c.lower_bound > spec.min_gain:
        out.append(
            f"primary {c.metric}: {level} lower bound of the gain {c.lower_bound:+.4g} "
            f"({c.test}; gain {c.diff:+.4g}, champion {c.champion:.4g}, candidate "
            f"{c.candidate:.4g}) does not exceed min_gain {spec.min_gain:g}"
        )
    if c.test == "mcnemar" and not (
        c.p_value_greater is not None and c.p_value_greater <= spec.alpha
    ):
        out.append(
            f"primary {c.metric}: McNemar one-sided p={c.p_value_greater:.4g} > "
            f"alpha {spec.alpha:g}"
        )
    return out


def _guard_reasons(c: MetricComparison, margin: float, alpha: float) -> list[str]:
    """Why a guard metric blocks promotion (empty when it is within its margin)."""
    if c.error is not None:
        return [f"guard {c.metric}: not computable ({c.error})"]
    if c.lower_bound > -margin:
        return []
    return [
        f"guard {c.metric}: one-sided {100 * (1 - alpha):g}% lower bound of the change "
        f"{c.lower_bound:+.4g} ({c.test}; change {c.diff:+.4g}, champion {c.champion:.4g}, "
        f"candidate {c.candidate:.4g}) is not above -margin {-margin:g}"
    ]


def _metric_list(
    spec: GateSpec,
    task: Task,
    champ: npt.NDArray[Any],
    cand: npt.NDArray[Any],
    extra: Sequence[str] | None,
) -> list[str]:
    """Gate metrics first (checked applicable), then the extra ones to report."""
    gate = [spec.primary, *spec.guards]
    for name in gate:
        for label, p in (("champion_pred", champ), ("candidate_pred", cand)):
            _check_applicable(_metric(name), task, p, label)
    if extra is None:
        common = set(applicable_metrics(task, champ)) & set(applicable_metrics(task, cand))
        extra = [m for m in METRICS if m in common]
    for name in extra:
        _metric(name)
    return gate + [m for m in extra if m not in gate]


def evaluate(
    task: str,
    y: npt.ArrayLike,
    champion_pred: npt.ArrayLike,
    candidate_pred: npt.ArrayLike,
    spec: GateSpec,
    seed: int = 0,
    *,
    holdout_hash: str | None = None,
    extra_metrics: Sequence[str] | None = None,
) -> Evaluation:
    """Compare candidate with champion on one holdout window and apply the gate.

    ``holdout_hash`` identifies the window (e.g. ``fingerprint(features, y)``); by default the
    labels are fingerprinted. ``extra_metrics`` are reported but not gated (default: every
    metric both predictions allow). Bad inputs and gate metrics that do not apply raise
    ValueError; a metric that cannot be computed on this data (one class only) is reported
    with its reason and refuses promotion if the gate needs it.
    """
    t, y_arr, arrays = _prepare(
        task, y, {"champion_pred": champion_pred, "candidate_pred": candidate_pred}
    )
    champ, cand = arrays["champion_pred"], arrays["candidate_pred"]
    n = int(y_arr.shape[0])
    names = _metric_list(spec, t, champ, cand, extra_metrics)
    reasons: list[str] = []
    if n < spec.min_samples:
        reasons.append(f"too few holdout rows: n={n} < min_samples={spec.min_samples}")
    if n < 2:
        comps = {
            m: _failed(m, METRICS[m].higher_is_better, _test_of(m), f"n={n} rows") for m in names
        }
    else:
        comps = {m: _safe_compare(m, t, y_arr, champ, cand, spec, seed) for m in names}
    reasons += _primary_reasons(comps[spec.primary], spec)
    for g in spec.guards:
        reasons += _guard_reasons(comps[g], spec.guard_margin(g), spec.alpha)
    return Evaluation(
        t,
        n,
        holdout_hash or fingerprint(y_arr),
        seed,
        spec,
        types.MappingProxyType(comps),
        not reasons,
        tuple(reasons),
    )
