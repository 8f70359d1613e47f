"""The whole rules file for a configuration: recording groups (leader, SLO windows, objectives)
then alert groups (SLO burn rates and quality, per-model stalls and incidents, operations).

>>> from driftd.config import Settings
>>> doc = rules_document(Settings(models={"m": {"features": {"x": "numeric"}}}))
>>> [g["name"] for g in doc["groups"]][:2]
['driftd-leader-recording', 'driftd-slo-recording']
"""

from __future__ import annotations

from typing import Any

from driftd.alerts.leader import LEADER_GROUP, leader_rules
from driftd.alerts.operations import operational_alerts
from driftd.alerts.recording import long_window_rules, objective_rules, short_window_rules
from driftd.alerts.rule import Alert
from driftd.alerts.slo import model_alerts, slo_alerts
from driftd.alerts.yamltext import dump
from driftd.config import Settings

HEADER = """\
driftd's Prometheus rules, generated from {source} by `driftd rules --config {source}`.
Do not edit: change the configuration ([models.NAME.slo], [alerts]) and regenerate.
Unit tests: rules_test.yml and rules_test_long.yml (promtool test rules FILE); runbooks:
docs/runbooks/<alert>.md; the alert table: docs/alerts.md.

SLO alerts are multiwindow, multi-burn-rate (Google SRE workbook, ch. 5), per model and
version: page at 14.4x the sustainable burn over 1h and 5m, page at 6x over 6h and 30m, ticket
at 1x over 3d and 6h; no `for`. A model driftd is not configured for gets the defaults
(99.5% non-errors, 99% within 0.5 s). Objectives of the configured models:
{objectives}

Several driftd instances (one job, one target each) work as one brain:
  partition series (events, joins, SLIs, pending, lag) come from every instance for the
    partitions it holds: sum them by model/version/..., never by instance;
  registry series (versions, promotions, rollbacks, retrain jobs, outbox, incidents) are the
    same on every instance: take their max, not their sum;
  decision series (alarms, drift statistics, canary verdicts and evidence, the event clock)
    are exported by the leader only: read them through the driftd:leader:* rules, which keep
    the samples of the instance with driftd_leader == 1 and drop the instance label
    (driftd/alerts/leader.py, shared with dashboards/build.py)."""


def _objectives(settings: Settings) -> list[str]:
    return [
        f"  {name}: {m.slo.availability * 100:g}% non-errors, "
        f"{m.slo.latency_target * 100:g}% within {m.slo.latency_s:g} s"
        for name, m in sorted(settings.models.items())
    ]


def alerts(settings: Settings) -> dict[str, list[Alert]]:
    """The alert groups by name."""
    return {
        "driftd-slo-alerts": slo_alerts(settings),
        "driftd-model-alerts": model_alerts(settings),
        "driftd-operations": operational_alerts(settings),
    }


def rules_document(settings: Settings) -> dict[str, Any]:
    """The rules file as plain data (``groups`` of rules), in a stable order."""
    groups: list[dict[str, Any]] = [
        {"name": LEADER_GROUP, "rules": leader_rules()},
        {"name": "driftd-slo-recording", "interval": "30s", "rules": short_window_rules(settings)},
        {
            "name": "driftd-slo-recording-long",
            "interval": "5m",
            "rules": long_window_rules(settings),
        },
        {"name": "driftd-slo-objectives", "rules": objective_rules(settings)},
    ]
    for name, group in alerts(settings).items():
        groups.append({"name": name, "rules": [a.rule(settings.alerts) for a in group]})
    return {"groups": groups}


def rules_yaml(settings: Settings, source: str = "FILE") -> str:
    """The rules file as YAML, with a header naming the configuration it came from."""
    header = HEADER.format(source=source, objectives="\n".join(_objectives(settings)))
    return dump(rules_document(settings), header.splitlines())
