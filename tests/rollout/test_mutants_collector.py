"""The canary evidence gauge's label names and values (a sampled mutation run found the label
names unchecked)."""

from __future__ import annotations

from driftd.daemon.metrics.rollout import RolloutCollector
from driftd.rollout.evidence import Reason, RolloutDecision, Verdict


def test_the_evidence_gauge_labels_each_bound_by_model_slo_and_side() -> None:
    reasons = (
        Reason("error_rate", "rollback", 1.5, 3.0, False, "r"),
        Reason("latency", "promote", 0.5, 3.0, False, "r"),
        Reason("latency", "interval", 9.0, 3.0, False, "r"),
    )
    verdict = Verdict(RolloutDecision.CONTINUE, "r", 10.0, reasons)
    collector = RolloutCollector(lambda: {"fraud": verdict})
    families = {f.name: f for f in collector.collect()}
    evidence = families["driftd_canary_evidence"].samples
    assert [(s.labels, s.value) for s in evidence] == [
        ({"model": "fraud", "slo": "error_rate", "bound": "lower"}, 1.5),
        ({"model": "fraud", "slo": "latency", "bound": "upper"}, 0.5),
    ]
    (code,) = families["driftd_canary_verdict"].samples
    assert (code.labels, code.value) == ({"model": "fraud"}, 0.0)
    assert [f.name for f in collector.describe()] == list(families)
