"""One alerting rule as Prometheus reads it, with the annotations every driftd alert carries:
summary, description, runbook_url (``<runbook_url>/<alert>.md``) and dashboard (a Grafana
link, filtered to the alert's model where it has one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from driftd.config.alerts import AlertSettings

Severity = Literal["page", "ticket", "warning"]
# Grafana dashboard uids (dashboards/build.py).
OVERVIEW, MODEL, CANARY, LINEAGE = (
    "driftd-overview",
    "driftd-model",
    "driftd-canary",
    "driftd-lineage",
)


@dataclass(frozen=True)
class Alert:
    """An alert before it is written: ``expr`` and the text a person reads when it fires."""

    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    dashboard: str = OVERVIEW
    per_model: bool = False  # the dashboard link filters on {{ $labels.model }}
    for_: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def rule(self, alerts: AlertSettings) -> dict[str, Any]:
        """The rule's mapping in a rules file."""
        link = f"{alerts.grafana_url.rstrip('/')}/d/{self.dashboard}"
        if self.per_model:
            link += "?var-model={{ $labels.model }}"
        out: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_:
            out["for"] = self.for_
        out["labels"] = {"severity": self.severity, **self.labels}
        out["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": runbook_url(alerts, self.name),
            "dashboard": link,
        }
        return out


def runbook_url(alerts: AlertSettings, name: str) -> str:
    """Where the runbook of alert ``name`` is."""
    return f"{alerts.runbook_url.rstrip('/')}/{name}.md"
