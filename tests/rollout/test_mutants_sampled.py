"""Rollout cases a sampled mutation run found unchecked: a batch with a single request marks its
arm as seen, the exported latency buckets are increasing exact histogram edges, the inputs'
always-valid p-value never exceeds 1 and weighs each arm's own variance and either direction
alike, per-feature moments are kept for any number of features, latency sums add up, ArmCounts
subtract field by field, the rate-difference bounds sit exactly on the edge of rejection, a check
left out of the SLO's checks switches its margin off, a batch may end when the last one did, and
a restored VersionCounts keeps its moments, an SLO alpha of 1 is refused, exactly min_labeled
labeled rows are enough, and the latency ceiling check rolls back or clears a canary."""

from __future__ import annotations

import numpy as np
import pytest

from driftd.config.rollout import RolloutSettings
from driftd.contracts.columns import PredictionColumns
from driftd.contracts.monitor import MonitorBatch
from driftd.rollout.controller import slo_of
from driftd.rollout.counts import EDGES_MS, FIELDS, PROMETHEUS_BUCKETS_S, VersionCounts
from driftd.rollout.evidence import SLO, ArmCounts, Batch, Evidence, RolloutDecision
from driftd.rollout.inputs import drift_pvalue
from driftd.rollout.rules import SequentialRule, _enough
from driftd.rollout.sequential import rate_difference_cs, rate_test


def test_a_batch_with_one_request_marks_its_arm_as_seen() -> None:
    ev = Evidence().add(Batch(10.0, ArmCounts(requests=1), ArmCounts()))
    assert (ev.canary_last_seen_s, ev.champion_last_seen_s) == (10.0, 0.0)
    ev = ev.add(Batch(20.0, ArmCounts(), ArmCounts(requests=1)))
    assert (ev.canary_last_seen_s, ev.champion_last_seen_s) == (10.0, 20.0)


def test_arm_counts_subtract_and_add_every_field() -> None:
    a = ArmCounts(10, 3, 2, 1, 8, 6, 5.0)
    b = ArmCounts(4, 1, 1, 1, 3, 2, 1.5)
    assert a - b == ArmCounts(6, 2, 1, 0, 5, 4, 3.5)
    assert (a - b) + b == a


def test_the_exported_latency_buckets_increase_and_are_histogram_edges() -> None:
    bounds = np.array(PROMETHEUS_BUCKETS_S)
    assert (np.diff(bounds) > 0).all()  # Prometheus requires increasing le bounds
    assert np.isin(bounds * 1000.0, EDGES_MS).all()
    assert PROMETHEUS_BUCKETS_S[:5] == (0.005, 0.01, 0.025, 0.05, 0.1)


def test_the_inputs_p_value_is_at_most_one_when_the_arms_agree() -> None:
    # Identical moments in three features: each likelihood ratio is below 1, so the
    # Bonferroni product 3/LR exceeds 1 and must be capped there.
    table = np.array([[100.0, 50.0, 40.0]] * 3)
    result = drift_pvalue(table, table.copy())
    assert result is not None
    z, p = result
    assert z == 0.0 and p == 1.0


def test_the_inputs_z_uses_each_arms_variance() -> None:
    canary = np.array([[100.0, 50.0, 40.0]])  # mean 0.5, variance 0.4 - 0.25
    champion = np.array([[100.0, 30.0, 20.0]])  # mean 0.3, variance 0.2 - 0.09
    result = drift_pvalue(canary, champion)
    assert result is not None
    assert result[0] == pytest.approx(0.2 / np.sqrt(0.15 / 100 + 0.11 / 100))
    swapped = drift_pvalue(champion, canary)
    assert swapped is not None and swapped == pytest.approx(result)  # a shift either way
    var, t2 = 0.15 / 100 + 0.11 / 100, 0.01 * (0.15 + 0.11) / 2
    log_lr = 0.5 * np.log(var / (var + t2)) + t2 * 0.2**2 / (2.0 * var * (var + t2))
    assert result[1] == pytest.approx(min(1.0, float(np.exp(-log_lr))))


def _batch(numeric: list[list[float]]) -> MonitorBatch:
    x = np.array(numeric)
    n = x.shape[0]
    preds = PredictionColumns(
        ids=[str(i) for i in range(n)],
        version=np.zeros(n, np.int32),
        ts=np.arange(n, dtype=np.float64),
        numeric=x,
        categorical=np.zeros((n, 0), np.int32),
        prediction=np.zeros(n),
        score=np.full(n, np.nan),
        latency_ms=np.full(n, 5.0),
        error=np.zeros(n, bool),
    )
    names = [f"f{j}" for j in range(x.shape[1])]
    return MonitorBatch("m", ["a"], preds, None, np.empty(0, np.int32), names)


def test_moments_are_kept_per_feature_for_any_number_of_features() -> None:
    for k in (1, 2, 4):
        counts = VersionCounts()
        counts.update(_batch([[float(j + 1)] * k for j in range(3)]))
        counts.update(_batch([[np.nan] * k]))  # not finite: not counted
        expected = np.tile([3.0, 6.0, 14.0], (k, 1))  # count, sum and sum of squares of 1, 2, 3
        np.testing.assert_array_equal(counts.moments["a"], expected)
    counts.update(_batch([[1.0] * 5]))  # a different feature count leaves the moments alone
    np.testing.assert_array_equal(counts.moments["a"], np.tile([3.0, 6.0, 14.0], (4, 1)))


def test_the_difference_bounds_are_the_edges_of_rejection() -> None:
    # lower > m exactly when the "greater" test rejects margin m, and upper < m when "less" does
    x_c, n_c, x_b, n_b = 80, 1000, 20, 1000
    lower, upper = rate_difference_cs(x_c, n_c, x_b, n_b)
    assert -1.0 < lower < upper < 1.0
    assert rate_test(x_c, n_c, x_b, n_b, margin=lower, side="greater").reject
    assert not rate_test(x_c, n_c, x_b, n_b, margin=lower + 1e-6, side="greater").reject
    assert rate_test(x_c, n_c, x_b, n_b, margin=upper, side="less").reject
    assert not rate_test(x_c, n_c, x_b, n_b, margin=upper - 1e-6, side="less").reject


def test_latency_sums_add_up_over_batches() -> None:
    counts = VersionCounts()
    counts.update(_batch([[1.0], [2.0]]))
    counts.update(_batch([[3.0]]))
    row = counts.counts["a"]
    assert row[FIELDS.index("requests")] == 3
    assert row[FIELDS.index("latency_sum_ms")] == 15.0  # 5 ms each


def test_a_check_left_out_switches_its_margin_off() -> None:
    slo = slo_of(RolloutSettings.model_validate({"slo": {"checks": ["error_rate"]}}))
    assert slo.error_margin is not None
    assert (slo.latency_margin, slo.quality_margin, slo.drift_alpha) == (None, None, None)
    slo = slo_of(RolloutSettings.model_validate({"slo": {"checks": ["latency", "drift"]}}))
    assert (slo.error_margin, slo.quality_margin) == (None, None)
    assert slo.latency_margin is not None and slo.drift_alpha is not None


def test_a_batch_ending_when_the_last_one_did_is_added() -> None:
    ev = Evidence().add(Batch(10.0, ArmCounts(requests=2), ArmCounts(requests=3)))
    ev = ev.add(Batch(10.0, ArmCounts(requests=1), ArmCounts()))
    assert (ev.elapsed_s, ev.canary.requests, ev.champion.requests) == (10.0, 3, 3)
    with pytest.raises(ValueError, match=r"before 10\.0 s"):
        ev.add(Batch(9.0, ArmCounts(), ArmCounts()))


def test_version_counts_restore_their_moments() -> None:
    counts = VersionCounts()
    counts.update(_batch([[1.0, 2.0], [3.0, 4.0]]))
    restored = VersionCounts()
    restored.load_state_dict(counts.state_dict())
    np.testing.assert_array_equal(restored.moments["a"], counts.moments["a"])
    np.testing.assert_array_equal(restored.counts["a"], counts.counts["a"])


def test_an_slo_alpha_of_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^alpha must be in \(0, 1\), got 1\.0$"):
        SLO(alpha=1.0)
    assert SLO(alpha=0.999).alpha == 0.999


def test_exactly_min_labeled_rows_are_enough_for_the_quality_slo() -> None:
    slo = SLO(quality_margin=0.02, min_samples=10, min_labeled=200)
    assert _enough(ArmCounts(requests=10, labeled=200), slo)
    assert not _enough(ArmCounts(requests=10, labeled=199), slo)
    assert not _enough(ArmCounts(requests=9, labeled=200), slo)


def test_a_canary_over_its_latency_ceiling_is_rolled_back_by_that_check() -> None:
    slo = SLO(latency_ceiling_ms=300.0, min_samples=100)  # at most 1% of requests over 300 ms
    slow = Evidence().add(Batch(60.0, ArmCounts(5000, over_ceiling=500), ArmCounts(5000)))
    v = SequentialRule().verdict(slow, slo)
    assert v.decision == RolloutDecision.ROLLBACK
    fired = [(r.slo, r.check, r.fired) for r in v.reasons if r.check != "interval"]
    assert fired == [("latency_ceiling", "rollback", True)]
    assert {r.slo for r in v.reasons if r.check == "interval"} == {"error_rate", "quality"}
    fast = Evidence().add(Batch(60.0, ArmCounts(5000, over_ceiling=10), ArmCounts(5000)))
    v = SequentialRule().verdict(fast, slo)
    assert ("latency_ceiling", "promote", True) in [(r.slo, r.check, r.fired) for r in v.reasons]
