"""The dashboards, Prometheus rules and deployment files under dashboards/ and deploy/.

Generated dashboards are current; every panel has a query that parses; the alert rules fire
in promtool's unit tests; only metrics of the recorder's contract are used; compose and the
Kubernetes example are well formed. promtool/docker-compose tests skip when the tool is
missing, except under CI=true where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services import in_ci

ROOT = Path(__file__).resolve().parents[2]
DASH = ROOT / "dashboards"
GRAFANA = DASH / "grafana"
PROM = DASH / "prometheus"
CI = in_ci()

# The recorder's metric contract (driftd/daemon/metrics.py and friends); histograms add
# _bucket/_sum/_count. Dashboards and rules may use nothing else (plus Prometheus's `up`).
COUNTERS_AND_GAUGES = {
    "driftd_events_consumed_total",
    "driftd_events_decoded_total",
    "driftd_events_dead_lettered_total",
    "driftd_events_ignored_total",
    "driftd_join_events_total",
    "driftd_join_pending",
    "driftd_join_pending_labels",
    "driftd_consumer_lag",
    "driftd_checkpoint_age_seconds",
    "driftd_checkpoint_failures_total",
    "driftd_drift_alarms_total",
    "driftd_predictions_total",
    "driftd_prediction_errors_total",
    "driftd_labeled_total",
    "driftd_correct_total",
    "driftd_model_quality",
    "driftd_drift_statistic",
    "driftd_drift_threshold",
    "driftd_retrain_jobs",
    "driftd_model_version_info",
    "driftd_canary_weight",
    "driftd_canary_evidence",
    "driftd_canary_verdict",
    "driftd_rollbacks_total",
    "driftd_promotions_total",
}
HISTOGRAMS = {
    "driftd_batch_processing_seconds",
    "driftd_checkpoint_duration_seconds",
    "driftd_prediction_latency_seconds",
    "driftd_retrain_job_duration_seconds",
}
CONTRACT = COUNTERS_AND_GAUGES | {
    f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}
BUILTIN = {"up"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if CI:
            pytest.fail(f"{name} is not installed; it is required under CI=true")
        pytest.skip(f"{name} is not installed (Debian package: see dashboards/check.sh)")
    return path


def _dashboards() -> dict[str, dict[str, Any]]:
    files = sorted(GRAFANA.glob("*.json"))
    assert files, "no generated dashboards in dashboards/grafana"
    return {f.name: json.loads(f.read_text(encoding="utf-8")) for f in files}


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels") or []))
    return out


def _queries() -> list[dict[str, Any]]:
    data = json.loads((DASH / "queries.json").read_text(encoding="utf-8"))
    queries: list[dict[str, Any]] = data["queries"]
    return queries


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "rules.yml").read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def _metric_names(expr: str) -> set[str]:
    """driftd_* and recording-rule (a:b:c) names in a PromQL expression, strings removed."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = set(re.findall(r"(?<![\w:])driftd_[A-Za-z0-9_]+(?![\w:])", bare))
    names |= set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+\b", bare))
    names |= set(re.findall(r"(?<![\w:])(up)\s*[{\[]", bare))
    return names


# -- generated dashboards ------------------------------------------------------------------


def test_generated_dashboards_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(DASH / "build.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    dashboards = _dashboards()
    assert set(dashboards) == {"overview.json", "model.json", "canary.json", "lineage.json"}
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", ["overview.json", "model.json", "canary.json", "lineage.json"])
def test_panels_have_unique_ids_and_a_query(name: str) -> None:
    dash = _dashboards()[name]
    panels = _panels(dash["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"{name}: repeated panel ids"
    for p in panels:
        if p["type"] == "row":
            continue
        targets = p.get("targets") or []
        assert targets, f"{name}: panel {p['title']!r} has no query"
        for t in targets:
            assert t.get("expr", "").strip(), f"{name}: panel {p['title']!r} has an empty query"
            assert t["datasource"]["uid"] == "prometheus"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{name}: panel {p['title']!r} repeats a refId"


def test_promotions_and_rollbacks_are_annotated_everywhere() -> None:
    for name, dash in _dashboards().items():
        exprs = " ".join(a.get("expr", "") for a in dash["annotations"]["list"])
        assert "driftd_promotions_total" in exprs, name
        assert "driftd_rollbacks_total" in exprs, name


def test_queries_json_lists_every_panel_query_with_variables_substituted() -> None:
    queries = _queries()
    listed = {(q["dashboard"], q["panel_id"], q["ref_id"]) for q in queries if q["kind"] == "panel"}
    for dash in _dashboards().values():
        for p in _panels(dash["panels"]):
            for t in p.get("targets") or []:
                assert (dash["uid"], p["id"], t["refId"]) in listed
    for q in queries:
        assert "$" not in q["query"], q


# -- PromQL validity and the metric contract -------------------------------------------------


def _check_parses(tmp_path: Path, exprs: list[str]) -> None:
    promtool = _tool("promtool")
    rules = {
        "groups": [
            {
                "name": "parse-check",
                "rules": [{"record": f"parse_check:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "parse.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    queries = _queries()
    assert len(queries) > 20
    _check_parses(tmp_path, [q["query"] for q in queries])


def test_only_contract_metrics_are_used() -> None:
    recorded = {r["record"] for r in _rules() if "record" in r}
    exprs = [q["expr"] for q in _queries()] + [r["expr"] for r in _rules()]
    for dash in _dashboards().values():
        for v in dash.get("templating", {}).get("list", []):
            exprs.append(str(v.get("query", "")))
    used: set[str] = set()
    for e in exprs:
        used |= _metric_names(e)
    unknown = sorted(used - CONTRACT - recorded - BUILTIN)
    assert not unknown, f"metrics outside the recorder contract: {unknown}"


def test_every_contract_metric_is_shown_or_alerted_on() -> None:
    exprs = [q["expr"] for q in _queries()] + [r["expr"] for r in _rules()]
    used: set[str] = set()
    for e in exprs:
        used |= _metric_names(e)
    base = {
        re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith(tuple(HISTOGRAMS)) else n
        for n in used
    }
    missing = sorted((COUNTERS_AND_GAUGES | HISTOGRAMS) - base)
    assert not missing, f"contract metrics on no dashboard and in no rule: {missing}"


# -- Prometheus rules ----------------------------------------------------------------------------


def test_rules_load() -> None:
    promtool = _tool("promtool")
    proc = subprocess.run(
        [promtool, "check", "rules", str(PROM / "rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_rules_fire_in_promtool_unit_tests() -> None:
    promtool = _tool("promtool")
    proc = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"],
        cwd=PROM,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    doc = yaml.safe_load((PROM / "rules_test.yml").read_text(encoding="utf-8"))
    fired = {
        t["alertname"]
        for case in doc["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert alerts - fired == set(), f"alerts never shown firing: {sorted(alerts - fired)}"


def test_each_slo_has_fast_and_slow_burn_alerts() -> None:
    exprs = {r["alert"]: r["expr"] for r in _rules() if "alert" in r}
    for slo in ("Error", "Latency"):
        fast, slow = exprs[f"Driftd{slo}BudgetBurnFast"], exprs[f"Driftd{slo}BudgetBurnSlow"]
        assert "14.4" in fast and "ratio_rate1h" in fast and "ratio_rate5m" in fast
        assert "6 *" in slow and "ratio_rate6h" in slow and "ratio_rate30m" in slow


def test_prometheus_config_loads() -> None:
    promtool = _tool("promtool")
    proc = subprocess.run(
        [promtool, "check", "config", str(PROM / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- Grafana provisioning ------------------------------------------------------------------------


def test_provisioning_points_at_the_generated_dashboards() -> None:
    ds = yaml.safe_load((DASH / "provisioning/datasources/prometheus.yml").read_text())
    assert [d["uid"] for d in ds["datasources"]] == ["prometheus"]
    prov = yaml.safe_load((DASH / "provisioning/dashboards/driftd.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards/grafana:{path}:ro" in mounts


# -- docker-compose and Kubernetes ------------------------------------------------------------


def test_compose_names_every_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("kafka", "postgres", "prometheus", "grafana", "driftd", "model-server"):
        assert name in services, name
    assert services["driftd"]["command"][:2] == ["driftd", "run"]
    for name in ("kafka", "postgres", "prometheus", "grafana", "driftd"):
        assert "healthcheck" in services[name], name


def test_compose_driftd_config_is_valid() -> None:
    from driftd.config import load_settings

    settings = load_settings(ROOT / "deploy/compose/driftd.toml", env={})
    assert settings.source.kind == "kafka"
    assert settings.checkpoint.url.startswith("postgresql")
    assert settings.metrics.host == "0.0.0.0"


def test_compose_file_validates() -> None:
    compose = _tool("docker-compose")
    proc = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_sidecar_has_probes_and_a_valid_config() -> None:
    from driftd.config import load_settings

    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/driftd-sidecar.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert {"ConfigMap", "Secret", "Deployment"} <= set(kinds)
    containers = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    assert "driftd" in names and len(containers) >= 2
    for c in containers:
        assert "livenessProbe" in c, c["name"]
        assert "readinessProbe" in c, c["name"]
        assert "resources" in c, c["name"]
    secret_env = set(kinds["Secret"]["stringData"])
    assert all(k.startswith("DRIFTD_") for k in secret_env)
    toml_path = Path(os.environ.get("TMPDIR", "/tmp")) / "driftd-k8s-test.toml"
    toml_path.write_text(kinds["ConfigMap"]["data"]["driftd.toml"], encoding="utf-8")
    try:
        load_settings(toml_path, env=dict.fromkeys(secret_env, "postgresql+psycopg://u@h/d"))
    finally:
        toml_path.unlink()


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "--require-hashes --no-deps -r /tmp/requirements-runtime.lock" in text
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert "HEALTHCHECK" in text and "EXPOSE 9464 8765" in text
