"""The stored form of an evaluation and the gate's edges: cases a mutation run found unchecked
(the keys and values stored with a candidate, metrics that cannot be computed, and a guard whose
lower bound sits exactly on its margin)."""

from __future__ import annotations

import json
import math

import numpy as np

from driftd.retrain.evaluate import GateSpec, MetricComparison, evaluate
from driftd.retrain.gate import _guard_reasons

FIELDS = {
    "metric", "higher_is_better", "champion", "candidate", "diff", "ci_low", "ci_high",
    "lower_bound", "bootstrap_ci", "test", "p_value", "p_value_greater", "error",
}  # fmt: skip


def test_the_stored_evaluation_keeps_every_key_and_value() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.4).astype(int)
    pa, pb = rng.random(400), np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
    spec = GateSpec("roc_auc", min_gain=0.01, margin=0.02, guards={"accuracy": None}, n_boot=200)
    ev = evaluate("binary", y, pa, pb, spec, seed=3, holdout_hash="h", extra_metrics=())
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["spec"] == {
        "primary": "roc_auc", "min_gain": 0.01, "margin": 0.02, "alpha": 0.05,
        "guards": {"accuracy": 0.02}, "min_samples": 200, "n_boot": 200,
    }  # fmt: skip
    assert (d["task"], d["n"], d["holdout_hash"], d["seed"]) == ("binary", 400, "h", 3)
    assert (d["promote"], d["reasons"], d["test"]) == (ev.promote, list(ev.reasons), "delong")
    assert set(d["metrics"]) == {"roc_auc", "accuracy"}
    auc = d["metrics"]["roc_auc"]
    assert set(auc) == FIELDS
    assert auc["diff"] == ev.primary.diff and auc["bootstrap_ci"] == list(ev.primary.bootstrap_ci)


def test_metrics_on_too_few_rows_are_reported_with_their_test_and_no_numbers() -> None:
    spec = GateSpec("roc_auc", guards={"accuracy": 0.01})
    ev = evaluate("binary", [1], [0.7], [0.6], spec)
    assert not ev.promote
    tests = {m: c.test for m, c in ev.metrics.items()}
    assert tests["roc_auc"] == "delong" and tests["accuracy"] == "mcnemar"
    assert {tests[m] for m in tests if m not in ("roc_auc", "accuracy")} == {"bootstrap"}
    for name, c in ev.metrics.items():
        assert c.metric == name and c.error == "n=1 rows"
        assert c.higher_is_better == (name not in ("log_loss", "brier"))
        numbers = (c.champion, c.candidate, c.diff, c.ci_low, c.ci_high, c.lower_bound)
        assert all(math.isnan(v) for v in (*numbers, *c.bootstrap_ci))
    stored = ev.to_dict()["metrics"]["accuracy"]
    assert stored["champion"] is None and stored["bootstrap_ci"] == [None, None]


def _comparison(lower_bound: float) -> MetricComparison:
    return MetricComparison(
        "accuracy", True, 0.8, 0.79, -0.01, -0.03, 0.01, lower_bound, (-0.03, 0.01), "mcnemar"
    )


def test_a_guard_whose_lower_bound_equals_minus_the_margin_blocks() -> None:
    # the rule: the lower bound must be *above* -margin
    assert _guard_reasons(_comparison(-0.02), 0.02, 0.05) == [
        "guard accuracy: one-sided 95% lower bound of the change -0.02 (mcnemar; change -0.01, "
        "champion 0.8, candidate 0.79) is not above -margin -0.02"
    ]
    assert _guard_reasons(_comparison(-0.0199), 0.02, 0.05) == []
    assert "one-sided 99% lower bound" in _guard_reasons(_comparison(-0.03), 0.02, 0.01)[0]
