"""Metrics for champion/challenger evaluation: what each metric is, input checks, per-row and
weighted (bootstrap-resampled) values. See ``driftd.retrain.evaluate`` for the gate."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Task = Literal["binary", "multiclass", "regression"]
TestName = Literal["bootstrap", "mcnemar", "delong"]

TASKS: tuple[str, ...] = get_args(Task)
# Probabilities are clipped to [EPS, 1 - EPS] inside log_loss so one confident miss is finite.
EPS = 1e-15


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
