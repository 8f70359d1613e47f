"""Per-version SLIs: counts, errors, latency buckets (Prometheus ``le`` semantics), accuracy,
squared errors for regression; a series per partition."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftd.contracts.columns import JoinedColumns, PredictionColumns
from driftd.contracts.monitor import MonitorBatch
from driftd.daemon.metrics.sli import SliCollector
from driftd.rollout.counts import VersionCounts


def _batch() -> MonitorBatch:
    n = 6
    version = np.array([0, 0, 0, 1, 1, 1], np.int32)
    preds = PredictionColumns(
        ids=[str(i) for i in range(n)],
        version=version,
        ts=np.arange(n, dtype=np.float64),
        numeric=np.zeros((n, 1)),
        categorical=np.zeros((n, 0), np.int32),
        prediction=np.array([1, 0, 1, 1, 1, 0], np.float64),
        score=np.full(n, np.nan),
        latency_ms=np.array([5.0, 5.1, np.nan, 1000.0, 6000.0, 1.0]),
        error=np.array([False, True, False, False, True, True]),
    )
    joined = JoinedColumns(
        version=version,
        ts=preds.ts,
        label_ts=preds.ts + 1,
        numeric=preds.numeric,
        categorical=preds.categorical,
        prediction=preds.prediction,
        score=preds.score,
        label=np.array([1, 1, 1, 0, 1, np.nan]),
        ids=preds.ids,
    )
    return MonitorBatch("m", ["a", "b"], preds, joined, np.empty(0, np.int32), ["x"], [])


class _Pipeline:
    """Just enough of a pipeline: the per-version counts of model m in partition 3."""

    def __init__(self, counts: VersionCounts) -> None:
        model = SimpleNamespace(version_counts=counts)
        self.partitions = {3: SimpleNamespace(models={"m": model})}


def _samples(c: SliCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reg = CollectorRegistry()
    reg.register(c)
    out = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counts_buckets_and_accuracy_per_version() -> None:
    counts = VersionCounts("binary")
    counts.update(_batch())
    counts.update(_batch())
    c = SliCollector(_Pipeline(counts), {"m": "binary"})  # type: ignore[arg-type]
    s = _samples(c)
    part = ("partition", "3")
    a, b = (("model", "m"), part, ("version", "a")), (("model", "m"), part, ("version", "b"))
    assert s[("driftd_predictions_total", a)] == 6 and s[("driftd_predictions_total", b)] == 6
    assert s[("driftd_prediction_errors_total", a)] == 2
    assert s[("driftd_prediction_errors_total", b)] == 4
    # 5.0 ms is in le=0.005 (le is inclusive), 5.1 ms is not; NaN latencies are not observed.
    assert (
        s[("driftd_prediction_latency_seconds_bucket", tuple(sorted((*a, ("le", "0.005")))))] == 2
    )
    assert s[("driftd_prediction_latency_seconds_bucket", tuple(sorted((*a, ("le", "0.01")))))] == 4
    assert s[("driftd_prediction_latency_seconds_count", a)] == 4
    assert s[("driftd_prediction_latency_seconds_bucket", tuple(sorted((*b, ("le", "1.0")))))] == 4
    assert s[("driftd_prediction_latency_seconds_bucket", tuple(sorted((*b, ("le", "+Inf")))))] == 6
    assert abs(s[("driftd_prediction_latency_seconds_sum", b)] - 2 * 7.001) < 1e-9
    # Version a: 2 of 3 correct; version b: one NaN label is not a labeled row, 1 of 2 correct.
    assert s[("driftd_labeled_total", a)] == 6 and s[("driftd_labeled_total", b)] == 4
    assert s[("driftd_model_quality", tuple(sorted((*a, ("metric", "accuracy")))))] == 4 / 6
    assert s[("driftd_model_quality", tuple(sorted((*b, ("metric", "accuracy")))))] == 2 / 4


def test_regression_exports_squared_errors_so_a_window_rmse_is_a_ratio_of_rates() -> None:
    counts = VersionCounts("regression")
    counts.update(_batch())
    c = SliCollector(_Pipeline(counts), {"m": "regression"})  # type: ignore[arg-type]
    s = _samples(c)
    part = ("partition", "3")
    a, b = (("model", "m"), part, ("version", "a")), (("model", "m"), part, ("version", "b"))
    # a: predictions 1, 0, 1 against labels 1, 1, 1; b: 1, 1 against 0, 1 (the NaN label is out).
    assert s[("driftd_squared_error_total", a)] == 1.0
    assert s[("driftd_squared_error_total", b)] == 1.0
    assert s[("driftd_labeled_total", a)] == 3 and s[("driftd_labeled_total", b)] == 2
    rmse = s[("driftd_model_quality", tuple(sorted((*a, ("metric", "rmse")))))]
    assert rmse == np.sqrt(s[("driftd_squared_error_total", a)] / s[("driftd_labeled_total", a)])
    counts.update(_batch())  # a second window: its rates give the same rmse
    later = _samples(c)
    d_sq = later[("driftd_squared_error_total", b)] - s[("driftd_squared_error_total", b)]
    d_n = later[("driftd_labeled_total", b)] - s[("driftd_labeled_total", b)]
    assert np.sqrt(d_sq / d_n) == np.sqrt(1 / 2)


def test_classification_exports_no_squared_errors() -> None:
    counts = VersionCounts("binary")
    counts.update(_batch())
    s = _samples(SliCollector(_Pipeline(counts), {"m": "binary"}))  # type: ignore[arg-type]
    assert not any(name == "driftd_squared_error_total" for name, _ in s)
    assert any(name == "driftd_correct_total" for name, _ in s)
