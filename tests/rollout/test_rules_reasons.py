"""What the Flagger- and Argo-style rules record with a decision: the reasons behind a rollback
or a promotion (they end up in the action's verdict and its audit text)."""

from __future__ import annotations

from driftd.rollout.evidence import SLO, ArmCounts, Batch, Evidence, Reason, RolloutDecision
from driftd.rollout.rules import ArgoRule, FlaggerRule

SLO0 = SLO(drift_alpha=None)
GOOD_C = ArmCounts(requests=100, errors=0, slow=0, labeled=30, correct=29)
GOOD_B = ArmCounts(requests=900, errors=5, slow=9, labeled=270, correct=248)
BAD_C = ArmCounts(requests=100, errors=5, slow=0, labeled=30, correct=28)


def _steady(seconds: int, canary: ArmCounts, every: int = 10) -> Evidence:
    ev = Evidence()
    for t in range(every, seconds + 1, every):
        ev = ev.add(Batch(float(t), canary, GOOD_B))
    return ev


def test_flagger_rollback_lists_each_failed_tick_then_the_count() -> None:
    v = FlaggerRule().verdict(_steady(600, BAD_C), SLO0)
    assert v.decision is RolloutDecision.ROLLBACK and v.rule == "flagger" and v.elapsed_s == 360.0
    ticks = [Reason("success_rate", "interval", 0.95, 0.99, True, "flagger", f"tick {k}")
             for k in range(1, 6)]  # fmt: skip
    assert v.reasons == (*ticks, Reason("failed_checks", "rollback", 5, 5, True, "flagger"))


def test_flagger_promotion_names_the_iterations() -> None:
    v = FlaggerRule(iterations=3).verdict(_steady(600, GOOD_C), SLO0)
    assert v.decision is RolloutDecision.PROMOTE and v.elapsed_s == 240.0
    assert v.reasons == (Reason("iterations", "promote", 3, 3, True, "flagger"),)


def test_flagger_checks_only_whole_intervals() -> None:
    # 239 s hold three whole 60 s ticks, not four
    v = FlaggerRule(iterations=3).verdict(_steady(239, GOOD_C, every=1), SLO0)
    assert v.decision is RolloutDecision.CONTINUE and v.elapsed_s == 239.0


def test_argo_rollback_and_promotion_reasons() -> None:
    v = ArgoRule(failure_limit=1).verdict(_steady(600, BAD_C), SLO0)
    assert (v.decision, v.rule, v.elapsed_s) == (RolloutDecision.ROLLBACK, "argo-fl1", 120.0)
    assert v.reasons == (Reason("success_rate", "rollback", 2, 1, True, "argo-fl1"),)
    v = ArgoRule(consecutive_error_limit=2).verdict(_steady(600, ArmCounts()), SLO0)
    assert v.elapsed_s == 180.0
    assert v.reasons == (Reason("success_rate", "rollback", 3, 2, True, "argo-fl0", "no data"),)
    v = ArgoRule(count=4).verdict(_steady(600, GOOD_C), SLO0)
    assert (v.decision, v.elapsed_s) == (RolloutDecision.PROMOTE, 240.0)
    assert v.reasons == (Reason("count", "promote", 4, 4, True, "argo-fl0"),)
