"""Champion/challenger evaluation: paired statistics on one holdout window, then the gate.

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

The promotion gate applied to these comparisons, and why it keeps the false-promotion rate at
``alpha``, is in ``driftd.retrain.gate``.
"""

from __future__ import annotations

import hashlib
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.retrain.gate import GateSpec, MetricComparison, gate_reasons
from driftd.retrain.paired import (
    BootstrapResult,
    DelongResult,
    McNemarResult,
    delong,
    mcnemar,
    paired_bootstrap,
)
from driftd.retrain.scores import (
    F64,
    I64,
    METRICS,
    MetricInfo,
    Task,
    TestName,
    _check_applicable,
    _metric,
    _predicted_class,
    _prepare,
    applicable_metrics,
    metric_value,
    per_row,
)

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
    if n < 2:
        comps = {
            m: _failed(m, METRICS[m].higher_is_better, _test_of(m), f"n={n} rows") for m in names
        }
    else:
        comps = {m: _safe_compare(m, t, y_arr, champ, cand, spec, seed) for m in names}
    reasons = gate_reasons(spec, comps, n)
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
