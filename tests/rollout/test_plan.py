"""The rollout plan: expected time for a good canary to promote, from the observed traffic,
checked against the state machine run on simulated traffic; and what it advises."""

from __future__ import annotations

import math

import numpy as np

from driftd.rollout.evidence import SLO, ArmCounts, Batch, Evidence, RolloutDecision
from driftd.rollout.machine import decide, start
from driftd.rollout.plan import Plan, Rates, make_plan
from driftd.rollout.rules import SequentialRule

SLO_E = SLO(drift_alpha=None, latency_margin=None, quality_margin=None)  # errors only
STEPS = (0.05, 0.25, 0.5)


def _plan(rate: float, slo: SLO = SLO_E) -> Plan:
    return make_plan(Rates(rate, {"error_rate": (0.005, 1.0)}), STEPS, 60.0, slo,
                     {"error_rate": 1.0 + slo.error_ni})  # fmt: skip


def _promote_times(rate: float, seeds: int) -> list[float]:
    """Seconds to promotion of a canary identical to the champion (errors 0.5 %)."""
    out = []
    rng = np.random.default_rng(5)
    for _ in range(seeds):
        r, _ = start("r", "m", 2, 1, STEPS, 0.0)
        ev, rule, t_done = Evidence(keep_history=False), SequentialRule(), math.inf
        for t in range(1, int(SLO_E.max_duration_s) + 1):
            n = rng.poisson(rate)
            n_c = rng.binomial(n, r.steps[r.step])
            c = ArmCounts(n_c, rng.binomial(n_c, 0.005))
            b = ArmCounts(n - n_c, rng.binomial(n - n_c, 0.005))
            ev = ev.add(Batch(float(t), c, b, step=r.step))
            v = rule.verdict(ev, SLO_E)
            r, act = decide(r, v, float(t), 60.0)
            if act is not None and act.kind == "promote":
                t_done = float(t)
            if act is not None and act.kind != "traffic":
                break
        out.append(t_done)
    return out


def test_the_plan_predicts_the_median_time_to_promote() -> None:
    plan = _plan(100.0)
    assert plan.reachable and "not reachable" not in plan.summary()
    median = float(np.median(_promote_times(100.0, 30)))
    assert 0.6 * plan.expected_total_s <= median <= 1.6 * plan.expected_total_s, (
        median, plan.expected_total_s)  # fmt: skip


def test_low_traffic_is_flagged_with_what_would_make_it_reachable() -> None:
    plan = _plan(2.0)
    assert not plan.reachable
    text = plan.summary()
    assert "not reachable" in text and "max_duration_s" in text and "error_ni" in text
    longer = SLO(drift_alpha=None, latency_margin=None, quality_margin=None,
                 max_duration_s=2 * math.ceil(plan.expected_total_s * 2))  # fmt: skip
    assert _plan(2.0, longer).reachable
    wider = SLO(drift_alpha=None, latency_margin=None, quality_margin=None, error_ni=4.0)
    assert _plan(2.0, wider).expected_total_s < plan.expected_total_s


def test_more_traffic_never_takes_longer() -> None:
    times = [_plan(r).expected_total_s for r in (5.0, 10.0, 20.0, 50.0, 100.0, 500.0)]
    assert times == sorted(times, reverse=True)


def test_no_traffic_is_never_reachable() -> None:
    plan = _plan(0.0)
    assert not plan.reachable and plan.to_dict()["expected_total_s"] is None


def test_the_machine_moves_early_steps_on_readiness_and_promotes_only_on_promote() -> None:
    r, _ = start("r", "m", 2, 1, STEPS, 0.0)
    cont = SequentialRule().verdict(Evidence(), SLO_E)
    assert cont.decision is RolloutDecision.CONTINUE and not cont.ready
    assert decide(r, cont, 100.0, 60.0)[1] is None  # not ready: stays
    ready = type(cont)(RolloutDecision.CONTINUE, "x", 100.0, (), ready=True)
    assert decide(r, ready, 30.0, 60.0)[1] is None  # dwell not spent
    r1, act = decide(r, ready, 100.0, 60.0)
    assert act is not None and act.kind == "traffic" and r1.step == 1
    r2, _ = decide(r1, ready, 200.0, 60.0)
    assert r2.step == 2
    assert decide(r2, ready, 400.0, 60.0)[1] is None  # the last step needs PROMOTE
    promote = type(cont)(RolloutDecision.PROMOTE, "x", 400.0, (), ready=True)
    assert decide(r2, promote, 400.0, 60.0)[1].kind == "promote"  # type: ignore[union-attr]


def test_nothing_is_promoted_after_max_duration() -> None:
    """max_duration_s is a bound: evidence that shows non-inferiority after it halts."""
    slo = SLO(drift_alpha=None, latency_margin=None, quality_margin=None, max_duration_s=600.0,
              min_samples=10)  # fmt: skip
    ev = Evidence()
    for t in range(10, 1210, 10):
        ev = ev.add(Batch(float(t), ArmCounts(500, 2), ArmCounts(500, 3)))
        if t == 590:
            assert SequentialRule().verdict(ev, slo).decision is RolloutDecision.PROMOTE
    assert SequentialRule().verdict(ev, slo).decision is RolloutDecision.HALT


def test_nothing_is_promoted_before_min_duration() -> None:
    """Strong early evidence waits out min_duration_s (a failure that starts late can show)."""
    slo = SLO(drift_alpha=None, latency_margin=None, quality_margin=None, min_samples=10,
              min_duration_s=300.0)  # fmt: skip
    ev = Evidence()
    decisions = {}
    for t in range(10, 400, 10):
        ev = ev.add(Batch(float(t), ArmCounts(5000, 20), ArmCounts(5000, 30)))
        decisions[t] = SequentialRule().verdict(ev, slo).decision
    assert all(d is RolloutDecision.CONTINUE for t, d in decisions.items() if t < 300)
    assert decisions[300] is RolloutDecision.PROMOTE


def test_a_minimum_duration_past_the_maximum_is_a_config_error() -> None:
    import pydantic
    import pytest

    from driftd.config.rollout import SLOSettings

    with pytest.raises(pydantic.ValidationError, match=r"min_duration_s = 600.0 .* max_duration_s"):
        SLOSettings(min_duration_s=600, max_duration_s=600)


def test_a_final_verdict_carries_the_rate_ratio_interval() -> None:
    """A rollback says how much worse: an always-valid interval on the error-rate ratio that
    holds the true ratio (4) and excludes 1."""
    slo = SLO(drift_alpha=None, latency_margin=None, quality_margin=None)
    ev = Evidence()
    rng = np.random.default_rng(2)
    for t in range(10, 3000, 10):
        c = ArmCounts(500, int(rng.binomial(500, 0.02)))
        b = ArmCounts(500, int(rng.binomial(500, 0.005)))
        ev = ev.add(Batch(float(t), c, b))
        v = SequentialRule().verdict(ev, slo)
        if v.decision is not RolloutDecision.CONTINUE:
            break
    assert v.decision is RolloutDecision.ROLLBACK
    (iv,) = [r for r in v.reasons if r.check == "interval"]
    assert 1.0 < iv.statistic < 4.0 < iv.bound, iv


def test_verdicts_and_plans_are_strict_json() -> None:
    """An unbounded interval end and a plan at no traffic are stored as null: PostgreSQL's json
    refuses Infinity (the leader could not save its verdict and retried for ever)."""
    import json

    slo = SLO(drift_alpha=None, latency_margin=None, quality_margin=None)
    ev = Evidence().add(Batch(10.0, ArmCounts(100, 12), ArmCounts(100, 0)))
    v = SequentialRule().verdict(ev, slo)
    assert v.decision is RolloutDecision.ROLLBACK
    (iv,) = [r for r in v.reasons if r.check == "interval"]
    assert iv.bound == math.inf  # never shown better: unbounded above
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert [r["bound"] for r in d["reasons"] if r["check"] == "interval"] == [None]
    plan = _plan(0.0)
    assert math.inf in plan.step_s
    assert None in json.loads(json.dumps(plan.to_dict(), allow_nan=False))["step_s"]
