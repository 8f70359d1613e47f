"""The rollout's Prometheus families, read at scrape time from the controller's last verdicts.

The verdict is a state set: one series per decision, 1 on the current one and 0 on the others,
so a query selects a decision by name (``driftd_canary_verdict{driftd_canary_verdict="halt"}
== 1``) instead of decoding a number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, StateSetMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from driftd.daemon.metrics.kinds import LIVE, help_text
from driftd.rollout.evidence import RolloutDecision, Verdict

DECISIONS = tuple(d.value for d in RolloutDecision)
"""The verdict's states: every model has a series for each."""
TESTS = ("rollback", "promote")
"""The always-valid tests whose evidence is exported (the ``test`` label's values)."""


def _families() -> tuple[StateSetMetricFamily, GaugeMetricFamily]:
    verdict = StateSetMetricFamily(
        "driftd_canary_verdict",
        help_text(
            "The canary rule's last decision, as a state set: the series of the current "
            "decision (continue, promote, rollback or halt) is 1, the others 0 (leader only; "
            "after a restart, from the rollout controller's first check).",
            "1 or 0",
            LIVE,
        ),
        labels=["model"],
    )
    evidence = GaugeMetricFamily(
        "driftd_canary_evidence",
        help_text(
            "Evidence of each always-valid test per SLO (test=rollback: the canary is worse; "
            "test=promote: the canary is not worse); the test rejects when it crosses "
            "log(1/alpha) (leader only; after a restart, from the controller's first check).",
            "natural log of an e-value",
            LIVE,
        ),
        labels=["model", "slo", "test"],
    )
    return verdict, evidence


class RolloutCollector(Collector):
    """The canary's evidence and verdict per model, as last computed."""

    def __init__(self, verdicts: Callable[[], Mapping[str, Verdict]]) -> None:
        self.verdicts = verdicts  # a snapshot, safe to call from the scrape thread

    def describe(self) -> Iterator[Metric]:
        """The families this collector exports (no samples)."""
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        """``driftd_canary_verdict`` and ``driftd_canary_evidence``."""
        verdict, evidence = _families()
        for model, v in sorted(self.verdicts().items()):
            now = v.decision.value
            verdict.add_metric([model], {d: d == now for d in DECISIONS})
            for reason in v.reasons:
                if reason.check in TESTS:
                    evidence.add_metric([model, reason.slo, reason.check], float(reason.statistic))
        yield verdict
        yield evidence
