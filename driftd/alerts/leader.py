"""The ``driftd:leader:*`` recording rules: decision series (alarms, detector statistics,
canary verdicts and evidence, the event clock) are exported by the leader only, so every
dashboard and alert reads them through these rules. Each keeps the samples of the instance
with ``driftd_leader == 1`` (a deposed leader's lingering series is dropped), takes that
instance's ``pipeline`` label and drops ``instance`` (one series across a failover).

The single source for dashboards/build.py (which inlines the expressions in queries.json) and
for the rules file (``driftd rules``).
"""

from __future__ import annotations

LEADER_RULES: dict[str, str] = {
    "driftd:leader:drift_alarms_total": "driftd_drift_alarms_total",
    "driftd:leader:drift_statistic": "driftd_drift_statistic",
    "driftd:leader:drift_threshold": "driftd_drift_threshold",
    "driftd:leader:detector_statistic": "driftd_detector_statistic",
    "driftd:leader:detector_threshold": "driftd_detector_threshold",
    "driftd:leader:canary_verdict": "driftd_canary_verdict",
    "driftd:leader:canary_evidence": "driftd_canary_evidence",
    "driftd:leader:epoch": "driftd_leader_epoch",
    "driftd:leader:event_clock_seconds": "driftd_leader_event_clock_seconds",
    "driftd:leader:held_buckets": "driftd_leader_held_buckets",
    "driftd:leader:late_values_total": "driftd_leader_late_values_total",
}
"""Recording rule name -> the raw metric it reads from the leader."""

LEADER_GROUP = "driftd-leader-recording"


def selector(*matchers: str) -> str:
    """``{a, b}`` of the non-empty matchers, or nothing."""
    kept = [m for m in matchers if m]
    return "{" + ", ".join(kept) + "}" if kept else ""


def leader_rule_expr(metric: str, matchers: str = "") -> str:
    """The samples of ``metric`` from the instance with ``driftd_leader == 1``, with that
    instance's ``pipeline`` label and without its ``instance`` label (the recording rule's
    expression when ``matchers`` is empty)."""
    return (
        f"max without (instance) ({metric}{selector(matchers)} "
        "* on (instance, job) group_left (pipeline) (driftd_leader == 1))"
    )


def leader_rules() -> list[dict[str, str]]:
    """The recording rules, in ``LEADER_RULES`` order."""
    return [{"record": name, "expr": leader_rule_expr(raw)} for name, raw in LEADER_RULES.items()]
