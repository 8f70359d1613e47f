"""The rollout's Prometheus families, read at scrape time from the controller's last verdicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from driftd.rollout.evidence import Verdict

VERDICT_CODE = {"continue": 0.0, "promote": 1.0, "rollback": -1.0, "halt": 2.0}


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    verdict = GaugeMetricFamily(
        "driftd_canary_verdict",
        "The canary rule's last decision: 0 continue, 1 promote, -1 rollback, 2 halt.",
        labels=["model"],
    )
    evidence = GaugeMetricFamily(
        "driftd_canary_evidence",
        "Log e-value of each always-valid test (rollback: canary worse; promote: canary "
        "not worse); the test rejects when it crosses log(1/alpha).",
        labels=["model", "slo", "bound"],
    )
    return verdict, evidence


class RolloutCollector(Collector):
    """The canary's evidence bounds and verdict per model, as last computed."""

    def __init__(self, verdicts: Callable[[], Mapping[str, Verdict]]) -> None:
        self.verdicts = verdicts  # a snapshot, safe to call from the scrape thread

    def describe(self) -> Iterator[Metric]:
        """The families this collector exports (no samples)."""
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        """``driftd_canary_verdict`` and ``driftd_canary_evidence``."""
        verdict, evidence = _families()
        for model, v in sorted(self.verdicts().items()):
            verdict.add_metric([model], VERDICT_CODE[v.decision.value])
            for reason in v.reasons:
                if reason.check in ("rollback", "promote"):
                    bound = "lower" if reason.check == "rollback" else "upper"
                    evidence.add_metric([model, reason.slo, bound], float(reason.statistic))
        yield verdict
        yield evidence
