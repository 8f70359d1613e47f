"""The canary evidence gauge's label names and values (a sampled mutation run found the label
names unchecked), and the verdict as a state set: one series per decision, 1 on the current."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from driftd.daemon.metrics.rollout import RolloutCollector
from driftd.rollout.evidence import Reason, RolloutDecision, Verdict


def test_the_evidence_gauge_labels_each_test_by_model_and_slo() -> None:
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
        ({"model": "fraud", "slo": "error_rate", "test": "rollback"}, 1.5),
        ({"model": "fraud", "slo": "latency", "test": "promote"}, 0.5),
    ]
    states = families["driftd_canary_verdict"]
    assert states.type == "stateset"
    assert {s.labels["driftd_canary_verdict"]: s.value for s in states.samples} == {
        "continue": 1.0,
        "promote": 0.0,
        "rollback": 0.0,
        "halt": 0.0,
    }
    assert {s.labels["model"] for s in states.samples} == {"fraud"}
    assert [f.name for f in collector.describe()] == list(families)


@pytest.mark.parametrize("decision", list(RolloutDecision))
def test_the_verdict_scrapes_as_one_gauge_series_per_decision(decision: RolloutDecision) -> None:
    registry = CollectorRegistry()
    registry.register(RolloutCollector(lambda: {"fraud": Verdict(decision, "r", 10.0, ())}))
    text = generate_latest(registry).decode()
    assert "# TYPE driftd_canary_verdict gauge" in text  # the classic text format has no stateset
    for d in RolloutDecision:
        line = f'driftd_canary_verdict{{driftd_canary_verdict="{d.value}",model="fraud"}}'
        assert f"{line} {1.0 if d is decision else 0.0}" in text
