"""The decision rules: hand-built evidence, purity, properties, and SequentialRule's false
rollback rate (canary = champion, many seeds) and power."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from driftd.rollout.evidence import SLO, ArmCounts, Batch, Evidence, RolloutDecision
from driftd.rollout.rules import ArgoRule, FlaggerRule, Rule, SequentialRule

SLO0 = SLO(drift_alpha=None, latency_quantiles=(0.99,))  # one latency threshold here


def _steady(
    seconds: int, canary: ArmCounts, champion: ArmCounts, every: int = 10, **kw: float
) -> Evidence:
    """Evidence from ``seconds`` of identical ``every``-second batches."""
    ev = Evidence()
    for t in range(every, seconds + 1, every):
        ev = ev.add(Batch(float(t), canary, champion, **kw))  # type: ignore[arg-type]
    return ev


GOOD_C = ArmCounts(requests=100, errors=0, slow=0, labeled=30, correct=29)
GOOD_B = ArmCounts(requests=900, errors=5, slow=9, labeled=270, correct=248)
BAD_C = ArmCounts(requests=100, errors=5, slow=0, labeled=30, correct=28)


def test_evidence_add_is_immutable_and_cumulative() -> None:
    ev0 = Evidence()
    ev1 = ev0.add(Batch(10.0, GOOD_C, GOOD_B))
    ev2 = ev1.add(Batch(20.0, GOOD_C, GOOD_B))
    assert ev0.canary == ArmCounts() and ev1.canary.requests == 100
    assert ev2.canary.requests == 200 and len(ev2.history) == 2
    assert ev2.at(15.0).canary.requests == 100 and ev2.at(5.0).canary.requests == 0


def test_sequential_rolls_back_a_clearly_worse_canary() -> None:
    v = SequentialRule().verdict(_steady(60, BAD_C, GOOD_B), SLO0)
    assert v.decision is RolloutDecision.ROLLBACK
    assert any(r.slo == "error_rate" and r.fired for r in v.reasons)
    json.dumps(v.to_dict())


def test_sequential_promotes_only_after_non_inferiority_and_min_samples() -> None:
    rule = SequentialRule()
    assert rule.verdict(_steady(60, GOOD_C, GOOD_B), SLO0).decision is RolloutDecision.CONTINUE
    v = rule.verdict(_steady(1200, GOOD_C, GOOD_B), SLO0)
    assert v.decision is RolloutDecision.PROMOTE
    assert {r.slo for r in v.reasons} == {"error_rate", "latency_q0.99", "quality"}


def test_no_data_halts_and_never_promotes() -> None:
    ev = _steady(600, ArmCounts(), GOOD_B)
    v = SequentialRule().verdict(ev, SLO0)
    assert v.decision is RolloutDecision.HALT
    assert v.reasons[0].slo == "canary"


def test_drift_halts_and_missing_drift_blocks_promotion() -> None:
    slo = SLO(drift_alpha=0.001, latency_quantiles=(0.99,))
    ev = _steady(1200, GOOD_C, GOOD_B)
    assert SequentialRule().verdict(ev, slo).decision is RolloutDecision.CONTINUE  # never measured
    drifted = ev.add(Batch(1210.0, GOOD_C, GOOD_B, drift_statistic=0.4, drift_pvalue=1e-6))
    assert SequentialRule().verdict(drifted, slo).decision is RolloutDecision.HALT
    fine = ev.add(Batch(1210.0, GOOD_C, GOOD_B, drift_statistic=0.01, drift_pvalue=0.5))
    assert SequentialRule().verdict(fine, slo).decision is RolloutDecision.PROMOTE


def test_max_duration_halts_when_undecided() -> None:
    slo = SLO(
        drift_alpha=None,
        max_duration_s=300.0,
        min_samples=10**9,
        latency_quantiles=(0.99,),
        min_duration_s=0.0,
    )  # cannot promote
    ev = _steady(300, GOOD_C, GOOD_B)
    assert SequentialRule().verdict(ev, slo).decision is RolloutDecision.HALT
    early = SequentialRule().verdict(_steady(290, GOOD_C, GOOD_B), slo)
    assert early.decision is RolloutDecision.CONTINUE


def test_flagger_counts_failed_checks_and_rolls_back_the_tick_after() -> None:
    rule = FlaggerRule()
    ev = _steady(600, BAD_C, GOOD_B)
    assert rule.verdict(_steady(300, BAD_C, GOOD_B), SLO0).decision is RolloutDecision.CONTINUE
    v = rule.verdict(ev, SLO0)
    assert v.decision is RolloutDecision.ROLLBACK and v.elapsed_s == 360.0
    good = _steady(720, GOOD_C, GOOD_B)
    assert rule.verdict(_steady(600, GOOD_C, GOOD_B), SLO0).decision is RolloutDecision.CONTINUE
    v = rule.verdict(good, SLO0)
    assert v.decision is RolloutDecision.PROMOTE and v.elapsed_s == 660.0
    # no data counts as a failed check
    assert rule.verdict(_steady(600, ArmCounts(), GOOD_B), SLO0).elapsed_s == 360.0


def test_argo_failure_limit_and_count() -> None:
    assert ArgoRule(failure_limit=0).verdict(_steady(600, BAD_C, GOOD_B), SLO0).elapsed_s == 60.0
    v = ArgoRule(failure_limit=3).verdict(_steady(600, BAD_C, GOOD_B), SLO0)
    assert v.decision is RolloutDecision.ROLLBACK and v.elapsed_s == 240.0
    v = ArgoRule(failure_limit=0).verdict(_steady(600, GOOD_C, GOOD_B), SLO0)
    assert v.decision is RolloutDecision.PROMOTE and v.elapsed_s == 600.0
    v = ArgoRule(failure_limit=0).verdict(_steady(600, ArmCounts(), GOOD_B), SLO0)
    assert v.decision is RolloutDecision.ROLLBACK and v.elapsed_s == 300.0  # 5 errors in a row
    assert ArgoRule(failure_limit=3).name == "argo-fl3"


arm = st.builds(
    ArmCounts,
    requests=st.integers(0, 400),
    errors=st.integers(0, 20),
    slow=st.integers(0, 20),
    labeled=st.integers(0, 100),
    correct=st.integers(0, 100),
)
RULES: list[Rule] = [SequentialRule(), FlaggerRule(), ArgoRule(failure_limit=0), ArgoRule()]


def _clip(a: ArmCounts) -> ArmCounts:
    n, lab = a.requests, min(a.labeled, a.requests)
    slow = tuple(min(x, n) for x in a.slows)
    return ArmCounts(n, min(a.errors, n), slow, 0, lab, min(a.correct, lab))


@settings(max_examples=80, deadline=None)
@given(c=arm, b=arm, batches=st.integers(1, 80), extra=st.integers(1, 20))
def test_more_canary_errors_never_turn_rollback_into_promote(
    c: ArmCounts, b: ArmCounts, batches: int, extra: int
) -> None:
    c, b = _clip(c), _clip(b)
    worse = ArmCounts(
        c.requests, min(c.errors + extra, c.requests), c.slow, 0, c.labeled, c.correct
    )
    for rule in RULES:
        v0 = rule.verdict(_steady(10 * batches, c, b), SLO0)
        v1 = rule.verdict(_steady(10 * batches, worse, b), SLO0)
        assert v0 == rule.verdict(_steady(10 * batches, c, b), SLO0)  # pure
        if v0.decision is RolloutDecision.ROLLBACK:
            assert v1.decision is RolloutDecision.ROLLBACK
        if v1.decision is RolloutDecision.PROMOTE:
            assert v0.decision is not RolloutDecision.ROLLBACK


@settings(max_examples=60, deadline=None)
@given(b=arm, batches=st.integers(1, 200))
def test_no_canary_data_never_promotes(b: ArmCounts, batches: int) -> None:
    ev = _steady(10 * batches, ArmCounts(), _clip(b))
    for rule in RULES:
        assert rule.verdict(ev, SLO0).decision is not RolloutDecision.PROMOTE
    if 10 * batches > SLO0.stall_s:
        assert SequentialRule().verdict(ev, SLO0).decision is RolloutDecision.HALT


def _run(rng: np.random.Generator, p_c: float, slo: SLO) -> RolloutDecision:
    """One simulated rollout (10-s batches, 100 rps, 10% canary, labels for 30%)."""
    ev, rule = Evidence(), SequentialRule()
    for t in range(10, int(slo.max_duration_s) + 1, 10):
        n = rng.poisson(1000)
        nc = rng.binomial(n, 0.1)
        arms = []
        for k, p in ((nc, p_c), (n - nc, 0.005)):
            lab = rng.binomial(k, 0.3)
            arms.append(
                ArmCounts(
                    k, rng.binomial(k, p), rng.binomial(k, 0.01), 0, lab, rng.binomial(lab, 0.92)
                )
            )
        ev = ev.add(Batch(float(t), arms[0], arms[1]))
        d = rule.verdict(ev, slo).decision
        if d is not RolloutDecision.CONTINUE:
            return d
    return RolloutDecision.CONTINUE


def test_sequential_false_rollback_rate_is_at_most_alpha() -> None:
    """canary = champion on every SLO (errors, latency, quality), 400 seeds to max duration."""
    seeds, rng = 400, np.random.default_rng(11)
    rollbacks = sum(_run(rng, 0.005, SLO0) is RolloutDecision.ROLLBACK for _ in range(seeds))
    assert rollbacks <= binom.ppf(0.999, seeds, SLO0.alpha)


def test_sequential_catches_a_fourfold_error_rate() -> None:
    rng = np.random.default_rng(12)
    slo = SLO(drift_alpha=None, max_duration_s=600.0, latency_quantiles=(0.99,))
    assert sum(_run(rng, 0.02, slo) is RolloutDecision.ROLLBACK for _ in range(100)) >= 98
