"""Gate edges a sampled mutation run found unchecked: two holdout rows are enough to compute
every metric (the cut-off for "too few rows" could move from 2 to 3 unnoticed), a primary
accuracy gain also needs McNemar's one-sided p-value at or below alpha and names its one-sided
level when below min_gain, exactly min_samples rows are enough, and a metric that does not apply
names the predictions it does not apply to; a negative min_gain or margin is named, and so is a
guard that cannot be computed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftd.retrain.evaluate import _jsonable, evaluate
from driftd.retrain.gate import GateSpec, MetricComparison, _primary_reasons


def test_two_rows_compute_each_metric() -> None:
    ev = evaluate("binary", [0, 1], [0.2, 0.9], [0.6, 0.4], GateSpec("accuracy", guards={}))
    acc = ev.metrics["accuracy"]
    assert acc.error is None and (acc.champion, acc.candidate) == (1.0, 0.0)
    ev = evaluate("regression", [1.0, 2.0], [1.5, 2.0], [1.0, 2.5], GateSpec("mae", guards={}))
    mae = ev.metrics["mae"]
    assert mae.error is None
    assert (mae.champion, mae.candidate) == pytest.approx((0.25, 0.25))


def _accuracy_gain(p_value_greater: float) -> MetricComparison:
    return MetricComparison(
        "accuracy", True, 0.80, 0.85, 0.05, 0.01, 0.09, 0.01, (0.01, 0.09), "mcnemar",
        p_value=2 * p_value_greater, p_value_greater=p_value_greater,
    )  # fmt: skip


def test_a_primary_accuracy_gain_also_needs_mcnemar_below_alpha() -> None:
    spec = GateSpec("accuracy", min_gain=0.0, alpha=0.05)
    assert _primary_reasons(_accuracy_gain(0.01), spec) == []
    (reason,) = _primary_reasons(_accuracy_gain(0.2), spec)
    assert reason == "primary accuracy: McNemar one-sided p=0.2 > alpha 0.05"


def test_exactly_min_samples_rows_are_enough() -> None:
    y, champion, candidate = [0, 1, 0, 1], [0.6, 0.4, 0.6, 0.4], [0.2, 0.9, 0.1, 0.8]
    spec = GateSpec("accuracy", min_gain=0.0, guards={}, min_samples=4)
    reasons = evaluate("binary", y, champion, candidate, spec).reasons
    assert not any(r.startswith("too few holdout rows") for r in reasons), reasons
    spec = GateSpec("accuracy", min_gain=0.0, guards={}, min_samples=5)
    reasons = evaluate("binary", y, champion, candidate, spec).reasons
    assert "too few holdout rows: n=4 < min_samples=5" in reasons


def test_a_primary_gain_below_min_gain_names_the_one_sided_level() -> None:
    spec = GateSpec("accuracy", min_gain=0.05, alpha=0.05)
    (reason,) = _primary_reasons(_accuracy_gain(0.01), spec)
    assert reason == (
        "primary accuracy: one-sided 95% lower bound of the gain +0.01 (mcnemar; gain +0.05, "
        "champion 0.8, candidate 0.85) does not exceed min_gain 0.05"
    )


def test_a_metric_that_does_not_apply_names_the_predictions_it_does_not_apply_to() -> None:
    y = [0, 1, 2, 1]
    codes = np.array(y)
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    spec = GateSpec("log_loss", guards={})
    with pytest.raises(ValueError, match=r"'log_loss' does not apply .* with champion_pred of"):
        evaluate("multiclass", y, codes, proba, spec)
    with pytest.raises(ValueError, match=r"'log_loss' does not apply .* with candidate_pred of"):
        evaluate("multiclass", y, proba, codes, spec)


def test_a_negative_margin_or_min_gain_is_named() -> None:
    with pytest.raises(ValueError, match=r"^min_gain=-0\.1 is invalid; valid: finite and >= 0$"):
        GateSpec("accuracy", min_gain=-0.1)
    with pytest.raises(ValueError, match=r"^margin=-0\.1 is invalid; valid: finite and >= 0$"):
        GateSpec("accuracy", margin=-0.1)


def test_a_guard_that_cannot_be_computed_blocks_by_name() -> None:
    ev = evaluate("binary", [1], [0.7], [0.6], GateSpec("roc_auc", guards={"accuracy": 0.01}))
    assert "guard accuracy: not computable (n=1 rows)" in ev.reasons


def test_stored_numpy_numbers_become_plain_numbers_and_non_finite_ones_null() -> None:
    out = _jsonable({"auc": np.float64(0.75), "n": np.int64(3), "ci": (np.float32(0.5), np.nan)})
    assert out == {"auc": 0.75, "n": 3, "ci": [0.5, None]}
    assert type(out["auc"]) is float and type(out["n"]) is int
    assert json.loads(json.dumps(out)) == out
