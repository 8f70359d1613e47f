"""The dashboards, Prometheus rules and deployment files under dashboards/ and deploy/.

Generated dashboards are current; every panel has a query that parses; the alert rules fire
in promtool's unit tests; only metrics of the recorder's contract are used; compose and the
Kubernetes example are well formed. promtool/docker-compose tests skip when the tool is
missing, except under CI=true where they fail.
"""

from __future__ import annotations

import importlib.util
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
    "driftd_file_source_remaining_bytes",
    "driftd_checkpoint_age_seconds",
    "driftd_checkpoint_failures_total",
    "driftd_drift_alarms_total",
    "driftd_predictions_total",
    "driftd_prediction_errors_total",
    "driftd_labeled_total",
    "driftd_correct_total",
    "driftd_squared_error_total",
    "driftd_feature_missing_total",
    "driftd_model_quality",
    "driftd_drift_statistic",
    "driftd_drift_threshold",
    "driftd_detector_statistic",
    "driftd_detector_threshold",
    "driftd_retrain_jobs",
    "driftd_model_version_info",
    "driftd_canary_weight",
    "driftd_canary_evidence",
    "driftd_canary_verdict",
    "driftd_rollbacks_total",
    "driftd_promotions_total",
    # registry collector (read from the database at scrape)
    "driftd_outbox_events",
    "driftd_outbox_oldest_pending_age_seconds",
    "driftd_retrain_job_oldest_age_seconds",
    # driftd/daemon/incidents.py
    "driftd_incidents",
    "driftd_incident_open_since_timestamp_seconds",
    "driftd_incident_info",
    # driftd/daemon/metrics/leader.py
    "driftd_leader",
    "driftd_leader_epoch",
    "driftd_leader_event_clock_seconds",
    "driftd_leader_held_buckets",
    "driftd_leader_late_values_total",
    "driftd_leader_merges_total",
    "driftd_leader_merge_seconds_total",
    "driftd_leader_fenced_out_total",
    "driftd_lease_renewal_failures_total",
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
# Recording rules generated from the configuration (one per model), not in rules.yml.
GENERATED_RULES = {"driftd:slo_objective"}
# Exported by the leader only: dashboards and alerts read them through driftd:leader:* rules.
DECISION = {
    "driftd_drift_alarms_total",
    "driftd_detector_statistic",
    "driftd_detector_threshold",
    "driftd_drift_statistic",
    "driftd_drift_threshold",
    "driftd_canary_verdict",
    "driftd_canary_evidence",
    "driftd_leader_event_clock_seconds",
    "driftd_leader_held_buckets",
    "driftd_leader_late_values_total",
}
# Process-local leadership families: shown per instance on purpose.
PER_INSTANCE = {
    "driftd_leader",
    "driftd_leader_epoch",
    "driftd_leader_merges_total",
    "driftd_leader_merge_seconds_total",
    "driftd_leader_fenced_out_total",
    "driftd_lease_renewal_failures_total",
}


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


# Label lists (by, on...) and label matchers: label names there are not metric names (the
# canary verdict's state-set label is called driftd_canary_verdict, like its metric).
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHER = re.compile(r'\b\w+\s*(?:=~|!~|!=|=)\s*""')


def _metric_names(expr: str) -> set[str]:
    """driftd_* and recording-rule (a:b:c) names in a PromQL expression, strings, label lists
    and label matchers removed."""
    bare = _MATCHER.sub("", _GROUPING.sub("", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))
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
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{name}: panel {p['title']!r} repeats a refId"


def test_queries_json_lists_every_panel_query_with_variables_substituted() -> None:
    queries = _queries()
    listed = {(q["dashboard"], q["panel_id"], q["ref_id"]) for q in queries if q["kind"] == "panel"}
    for dash in _dashboards().values():
        for p in _panels(dash["panels"]):
            for t in p.get("targets") or []:
                assert (dash["uid"], p["id"], t["refId"]) in listed
    for q in queries:
        assert not re.search(r"\$[A-Za-z_{]", q["query"]), q  # $1: a label_replace group


def _datasource_refs(node: Any) -> list[Any]:
    """Every value of a ``datasource`` key anywhere in a dashboard."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "datasource"]
        return found + [r for v in node.values() for r in _datasource_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _datasource_refs(v)]
    return []


@pytest.mark.parametrize("name", ["overview.json", "model.json", "canary.json", "lineage.json"])
def test_every_query_reads_the_datasource_variable(name: str) -> None:
    dash = _dashboards()[name]
    variables = dash["templating"]["list"]
    first = variables[0]
    assert (first["name"], first["type"], first["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    ), "the datasource variable comes first: the other variables query it"
    refs = _datasource_refs(dash["panels"]) + _datasource_refs(dash["annotations"])
    refs += _datasource_refs(variables[1:])
    assert refs, name
    for ref in refs:
        assert ref == {"type": "prometheus", "uid": "${datasource}"}, f"{name}: {ref!r}"
    # No datasource uid is written anywhere (the provisioned one is "prometheus").
    assert '"uid": "prometheus"' not in json.dumps(dash)


def test_dashboards_link_to_each_other() -> None:
    dashboards = _dashboards()
    for name, dash in dashboards.items():
        (link,) = dash["links"]
        assert link["type"] == "dashboards" and link["tags"] == ["driftd"], name
        assert link["includeVars"] and link["keepTime"], name
        assert "driftd" in dash["tags"], name


def _data_links(dash: dict[str, Any]) -> dict[str, list[str]]:
    """Panel title -> the URLs of its data links."""
    return {
        p["title"]: [lnk["url"] for lnk in p["fieldConfig"]["defaults"]["links"]]
        for p in _panels(dash["panels"])
        if (p.get("fieldConfig") or {}).get("defaults", {}).get("links")
    }


def test_model_and_canary_panels_link_to_their_dashboards_with_the_model() -> None:
    dashboards = _dashboards()
    uids = {d["uid"] for d in dashboards.values()}
    carried = "var-model=${__field.labels.model}"
    for name, dash in dashboards.items():
        links = _data_links(dash)
        for title, urls in links.items():
            for url in urls:
                target = re.match(r"/d/([\w-]+)\?", url)
                assert target and target.group(1) in uids, f"{name} / {title}: {url}"
                assert "${__url_time_range}" in url and "${datasource:queryparam}" in url, url
        if name == "lineage.json":
            assert any("var-model=${__data.fields.model}" in u for u in links["Lineage"])
            continue
        to_model = {t for t, urls in links.items() if any("/d/driftd-model?" in u for u in urls)}
        to_canary = {t for t, urls in links.items() if any("/d/driftd-canary?" in u for u in urls)}
        assert all(carried in u for urls in links.values() for u in urls), name
        if name == "overview.json":
            assert {"Predictions per second", "Prediction error ratio", "Drift alarms"} <= to_model
            assert "Canary verdict" in to_model & to_canary
        if name == "canary.json":
            assert {"Verdict", "Error ratio per version"} <= to_model
        if name == "model.json":
            assert "Traffic weight per version" in to_canary
    # That each such panel's series keep their model label: the multi-instance test checks.


def _panel_queries(dashboard: str, title: str) -> list[dict[str, Any]]:
    found = [q for q in _queries() if q["dashboard"] == dashboard and q["panel"] == title]
    assert found, f"no panel {title!r} on {dashboard}"
    return found


def test_slo_panels_read_the_ratio_rules_and_fall_back_to_the_default_objective() -> None:
    for slo, rule, default in (
        ("Errors", "model_version:driftd_prediction_errors:ratio_rate", "0.995"),
        ("Latency", "model_version:driftd_prediction_latency_slow:ratio_rate", "0.99"),
    ):
        fallback = f"or on (model) ({default} * group by (model) (driftd_model_version_info"
        burn = _panel_queries("driftd-model", f"{slo}: burn rate")
        assert [re.search(rf"{rule}(\w+)\{{", q["expr"]).group(1) for q in burn] == [  # type: ignore[union-attr]
            "1h",
            "6h",
            "3d",
        ]
        sli = _panel_queries("driftd-model", f"{slo}: SLI vs objective")
        assert f"1 - {rule}5m" in sli[0]["expr"]
        budget = _panel_queries("driftd-model", f"{slo}: error budget left (30d)")
        assert budget[0]["expr"].startswith(f"1 - {rule}30d{{")
        for q in [*burn, *sli[1:], *budget]:
            assert 'driftd:slo_objective{model=~"$model", slo="' in q["expr"], q["panel"]
            assert fallback in q["expr"], q["panel"]
            assert "driftd:slo_objective" in q["query"]
        (overview,) = _panel_queries(
            "driftd-overview", f"{slo}: error budget left (production, 30d)"
        )
        assert 'driftd_model_version_info{stage="production"}' in overview["expr"]
        (fastest,) = _panel_queries("driftd-overview", f"{slo}: burn rate 1h (fastest version)")
        for q in (overview, fastest):
            assert fallback in q["expr"], q["panel"]


def test_features_show_their_detector_statistic_beside_the_threshold() -> None:
    stat_now, threshold, ratio = _panel_queries("driftd-model", "Feature detectors now")
    assert "driftd:leader:detector_statistic" in stat_now["expr"]
    assert "driftd:leader:detector_threshold" in threshold["expr"]
    for q in (stat_now, threshold, ratio):
        assert 'stream=~"feature:(${feature})(=.*)?"' in q["expr"]
        assert '"feature", "$1", "stream", "feature:([^=]*).*"' in q["expr"]
        assert q["instant"] and not q["expect_data"] and q["optional"]
    (over_time,) = _panel_queries("driftd-model", "Feature detectors: statistic / threshold")
    assert "detector_statistic" in over_time["expr"] and "detector_threshold" in over_time["expr"]
    (missing,) = _panel_queries("driftd-model", "Missing values per feature")
    assert missing["expect_data"] and 'feature=~"$feature"' in missing["expr"]
    feature = {v["name"]: v for v in _dashboards()["model.json"]["templating"]["list"]}["feature"]
    assert "driftd_feature_missing_total" in feature["query"]


def test_rollouts_and_incidents_are_annotated_everywhere() -> None:
    for name, dash in _dashboards().items():
        notes = {a["name"]: a for a in dash["annotations"]["list"] if "expr" in a}
        assert {"Promotions", "Rollbacks", "Canary verdicts", "Incidents"} <= set(notes), name
        assert "driftd_promotions_total" in notes["Promotions"]["expr"]
        assert "driftd_rollbacks_total" in notes["Rollbacks"]["expr"]
        verdicts = notes["Canary verdicts"]
        assert "driftd:leader:canary_verdict" in verdicts["expr"]
        assert "{{driftd_canary_verdict}}" in verdicts["titleFormat"]
        assert "{{report_url}}" in notes["Incidents"]["textFormat"]


def test_the_verdict_shows_the_state_name() -> None:
    states = {"continue", "promote", "rollback", "halt"}
    for dashboard, title in (("driftd-overview", "Canary verdict"), ("driftd-canary", "Verdict"),
                             ("driftd-canary", "Verdict over time")):  # fmt: skip
        (q,) = _panel_queries(dashboard, title)
        named = set(re.findall(r'driftd_canary_verdict="(\w+)"', q["expr"]))
        assert named == states, q["expr"]
        dash = next(d for d in _dashboards().values() if d["uid"] == dashboard)
        panel = next(p for p in _panels(dash["panels"]) if p["title"] == title)
        (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
        assert {m["text"] for m in mapping["options"].values()} == states


def test_optional_queries_name_why() -> None:
    optional = [q for q in _queries() if q["kind"] == "panel" and not q["expect_data"]]
    assert optional
    for q in optional:
        assert q["optional"], q


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
    unknown = sorted(used - CONTRACT - recorded - BUILTIN - GENERATED_RULES)
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


# -- several instances as one brain ----------------------------------------------------------


def _build() -> Any:
    spec = importlib.util.spec_from_file_location("driftd_dashboards_build", DASH / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _norm(expr: str) -> str:
    flat = " ".join(expr.split())
    return re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", flat))


def test_recording_rules_match_the_expressions_build_py_inlines() -> None:
    build = _build()
    recorded = {r["record"]: r["expr"] for r in _rules() if "record" in r}
    leader_rules = {name for name in recorded if name.startswith("driftd:leader:")}
    assert leader_rules == set(build.LEADER_RULES)
    for name, expand in build.RECORDED.items():
        assert _norm(recorded[name]) == _norm(expand("")), name


def test_decision_series_are_read_from_the_leader_only() -> None:
    exprs = [q["expr"] for q in _queries()] + [r["expr"] for r in _rules() if "alert" in r]
    for e in exprs:
        raw = _metric_names(e) & DECISION
        assert not raw, f"{e!r} reads {sorted(raw)} without the driftd:leader:* rules"
    used = set().union(*(_metric_names(q["expr"]) for q in _queries()))
    assert {n for n in used if n.startswith("driftd:leader:")} == set(_build().LEADER_RULES)


def test_only_leadership_panels_group_by_instance() -> None:
    for q in _queries():
        if re.search(r"\b(by|on)\s*\([^)]*\binstance\b", q["expr"]):
            names = _metric_names(q["expr"])
            assert names <= PER_INSTANCE, f"{q['panel']}: {q['expr']!r} groups by instance"


# One model, two versions. "one": a single instance o (the leader). "many": instance a (the
# leader) holds 60% of the partitions, b 40%; b still shows stale decision series of its own.
# Partition series split, registry series are the same on both, decision series come from a.
_MV = [{"model": "m", "version": "1"}, {"model": "m", "version": "2"}]
_SPLIT = (("a", 0.6), ("b", 0.4))
_REGISTRY: list[tuple[str, dict[str, str], str]] = [
    ("driftd_model_version_info", {"model": "m", "version": "1", "stage": "production",
     "alias": "champion", "run": "r1", "data_version": "d1", "code_version": "c1",
     "parent": ""}, "1x60"),
    ("driftd_model_version_info", {"model": "m", "version": "2", "stage": "canary",
     "alias": "", "run": "r2", "data_version": "d2", "code_version": "c2", "parent": "1"},
     "1x60"),
    ("driftd_canary_weight", {"model": "m", "version": "1"}, "0.9x60"),
    ("driftd_canary_weight", {"model": "m", "version": "2"}, "0.1x60"),
    ("driftd_promotions_total", {"model": "m"}, "1x29 2x30"),
    ("driftd_rollbacks_total", {"model": "m"}, "0x29 1x30"),
    ("driftd_incidents", {"model": "m", "state": "open"}, "1x60"),
    ("driftd_incidents", {"model": "m", "state": "resolved"}, "2x60"),
    ("driftd_incident_open_since_timestamp_seconds", {"model": "m"}, "1767225600x60"),
    ("driftd_incident_info", {"model": "m", "version": "1", "stream": "error",
     "incident": "inc-0123456789abcdef", "state": "open",
     "url": "http://127.0.0.1:8765/api/v1/incidents/inc-0123456789abcdef",
     "report_url": "http://127.0.0.1:8765/api/v1/incidents/inc-0123456789abcdef/report"},
     "1x60"),
    ("driftd_retrain_jobs", {"model": "m", "state": "succeeded"}, "2x60"),
    ("driftd_retrain_jobs", {"model": "m", "state": "queued"}, "1x60"),
    ("driftd_retrain_job_oldest_age_seconds", {"model": "m", "state": "queued"}, "0+60x60"),
    ("driftd_retrain_job_oldest_age_seconds", {"model": "m", "state": "running"}, "0x60"),
    ("driftd_outbox_events", {"state": "pending"}, "2x60"),
    ("driftd_outbox_events", {"state": "delivered"}, "0+1x60"),
    ("driftd_outbox_events", {"state": "dead"}, "0x60"),
    ("driftd_outbox_oldest_pending_age_seconds", {}, "5x60"),
    *[
        ("driftd_retrain_job_duration_seconds_bucket",
         {"model": "m", "outcome": "succeeded", "le": le}, v)
        for le, v in (("60", "0+1x60"), ("600", "0+2x60"), ("+Inf", "0+2x60"))
    ],
    ("driftd_retrain_job_duration_seconds_count", {"model": "m", "outcome": "succeeded"},
     "0+2x60"),
    ("driftd_retrain_job_duration_seconds_sum", {"model": "m", "outcome": "succeeded"},
     "0+300x60"),
]  # fmt: skip
_DECISION: list[tuple[str, dict[str, str], str, str]] = [  # (name, labels, leader, stale)
    ("driftd_drift_alarms_total", {"model": "m", "version": "1", "stream": "error",
     "detector": "DDM", "kind": "drift"}, "0+1x60", "99x60"),
    ("driftd_drift_statistic", {"model": "m", "version": "1", "stream": "error",
     "detector": "DDM"}, "0.3x60", "9x60"),
    ("driftd_drift_threshold", {"model": "m", "version": "1", "stream": "error",
     "detector": "DDM"}, "0.2x60", "9x60"),
    ("driftd_detector_statistic", {"pipeline": "p", "model": "m", "version": "1",
     "stream": "error", "detector": "DDM"}, "0.1x60", "9x60"),
    ("driftd_detector_threshold", {"pipeline": "p", "model": "m", "version": "1",
     "stream": "error", "detector": "DDM"}, "0.2x60", "9x60"),
    # A feature detector: an ADWIN on a numeric feature, a DDM on a category of another.
    *[
        (name, {"pipeline": "p", "model": "m", "version": "1", "stream": stream,
         "detector": det}, value, "9x60")
        for stream, det, stat, thr in (("feature:amount", "ADWIN", "0.5x60", "2x60"),
                                       ("feature:country=FR", "DDM", "1x30 3x30", "2x60"))
        for name, value in (("driftd_detector_statistic", stat),
                            ("driftd_detector_threshold", thr))
    ],
    # A state set: the canary continues for 20 minutes, then is rolled back; the stale
    # follower still says promote.
    *[
        ("driftd_canary_verdict", {"model": "m", "driftd_canary_verdict": state}, lead, stale)
        for state, lead, stale in (("continue", "1x20 0x40", "0x60"),
                                   ("promote", "0x60", "1x60"),
                                   ("rollback", "0x20 1x40", "0x60"),
                                   ("halt", "0x60", "0x60"))
    ],
    *[
        ("driftd_canary_evidence", {"model": "m", "slo": slo, "test": test}, "1.5x60", "9x60")
        for slo in ("error_rate", "latency_p99", "quality")
        for test in ("rollback", "promote")
    ],
    ("driftd_leader_event_clock_seconds", {"pipeline": "p"}, "0+60x60", "5x60"),
    ("driftd_leader_held_buckets", {"pipeline": "p"}, "3x60", "40x60"),
    ("driftd_leader_late_values_total", {"pipeline": "p"}, "0+2x60", "50x60"),
]  # fmt: skip


def _partition_series() -> list[tuple[str, dict[str, str], float, bool]]:
    """(name, labels, per-minute increment or value, counter?) of one instance holding every
    partition; the other instances split it."""
    out: list[tuple[str, dict[str, str], float, bool]] = [
        ("driftd_events_consumed_total", {}, 100, True),
        ("driftd_events_decoded_total", {}, 90, True),
        ("driftd_events_dead_lettered_total", {"reason": "decode_error"}, 5, True),
        ("driftd_events_ignored_total", {"reason": "unknown_model"}, 5, True),
        ("driftd_join_events_total", {"model": "m", "outcome": "joined"}, 50, True),
        ("driftd_join_pending", {"model": "m"}, 30, False),
        ("driftd_join_pending_labels", {"model": "m"}, 10, False),
        ("driftd_feature_missing_total", {"model": "m", "feature": "amount"}, 3, True),
        ("driftd_feature_missing_total", {"model": "m", "feature": "country"}, 0, True),
        ("driftd_checkpoint_failures_total", {}, 0, True),
        ("driftd_leader_merges_total", {"pipeline": "p"}, 60, True),
        ("driftd_leader_merge_seconds_total", {"pipeline": "p"}, 3, True),
    ]
    for hist in ("driftd_batch_processing_seconds", "driftd_checkpoint_duration_seconds"):
        for le, n in (("0.1", 50), ("1", 90), ("+Inf", 100)):
            out.append((f"{hist}_bucket", {"le": le}, n, True))
        out.append((f"{hist}_count", {}, 100, True))
        out.append((f"{hist}_sum", {}, 30, True))
    for mv, (preds, errs) in zip(_MV, ((100, 10), (50, 1)), strict=True):
        out += [
            ("driftd_predictions_total", mv, preds, True),
            ("driftd_prediction_errors_total", mv, errs, True),
        ]
        for le, share in (("0.1", 0.5), ("0.5", 0.9), ("+Inf", 1.0)):
            bucket = {**mv, "le": le}
            out.append(("driftd_prediction_latency_seconds_bucket", bucket, preds * share, True))
        out.append(("driftd_prediction_latency_seconds_count", mv, preds, True))
        out.append(("driftd_prediction_latency_seconds_sum", mv, preds * 0.2, True))
    return out


def _two_scenarios() -> list[dict[str, str]]:
    series: list[dict[str, str]] = []

    def add(name: str, labels: dict[str, str], job: str, inst: str, values: str) -> None:
        lbl = {"job": job, "instance": f"{inst}:9464", **labels}
        body = ",".join(f'{k}="{v}"' for k, v in lbl.items())
        series.append({"series": f"{name}{{{body}}}", "values": values})

    def ramp(step: float, counter: bool) -> str:
        return f"0+{step:g}x60" if counter else f"{step:g}x60"

    for name, labels, step, counter in _partition_series():
        add(name, labels, "one", "o", ramp(step, counter))
        for inst, share in _SPLIT:
            add(name, labels, "many", inst, ramp(step * share, counter))
    # Quality per instance over its own rows: v1 0.65 overall = 0.75 on a's 60% and 0.5 on
    # b's 40%; v2 0.75 everywhere. Labeled and correct rows split the same way.
    for mv, labeled, quality, parts in (
        (_MV[0], 100, 0.65, {"a": (60, 0.75), "b": (40, 0.5)}),
        (_MV[1], 40, 0.75, {"a": (24, 0.75), "b": (16, 0.75)}),
    ):
        q = {**mv, "metric": "accuracy"}
        add("driftd_labeled_total", mv, "one", "o", ramp(labeled, True))
        add("driftd_correct_total", mv, "one", "o", ramp(labeled * quality, True))
        add("driftd_model_quality", q, "one", "o", ramp(quality, False))
        for inst, (n, acc) in parts.items():
            add("driftd_labeled_total", mv, "many", inst, ramp(n, True))
            add("driftd_correct_total", mv, "many", inst, ramp(n * acc, True))
            add("driftd_model_quality", q, "many", inst, ramp(acc, False))
    # A regressor r: rmse 2 over the window on both instances (squared errors 4 per label).
    reg = {"model": "r", "version": "1"}
    add("driftd_labeled_total", reg, "one", "o", ramp(10, True))
    add("driftd_correct_total", reg, "one", "o", ramp(0, True))
    add("driftd_squared_error_total", reg, "one", "o", ramp(40, True))
    add("driftd_model_quality", {**reg, "metric": "rmse"}, "one", "o", ramp(2, False))
    for inst, n in (("a", 6), ("b", 4)):
        add("driftd_labeled_total", reg, "many", inst, ramp(n, True))
        add("driftd_correct_total", reg, "many", inst, ramp(0, True))
        add("driftd_squared_error_total", reg, "many", inst, ramp(4 * n, True))
        add("driftd_model_quality", {**reg, "metric": "rmse"}, "many", inst, ramp(2, False))
    # Per-partition and per-process gauges: a partition moving from a to b is on both.
    for job, insts in (("one", {"o": (12, ["predictions[0]", "predictions[1]"])}),
                       ("many", {"a": (12, ["predictions[0]"]),
                                 "b": (3, ["predictions[0]", "predictions[1]"])})):  # fmt: skip
        for inst, (age, streams) in insts.items():
            add("driftd_checkpoint_age_seconds", {}, job, inst, f"{age}x60")
            for stream in streams:
                lag = "500x60" if stream.endswith("[0]") else "200x60"
                part = {"topic": "predictions", "partition": stream[-2]}
                add("driftd_consumer_lag", part, job, inst, lag)
            add("driftd_file_source_remaining_bytes", {}, job, inst, "4096x60")
            add("driftd_lease_renewal_failures_total", {"pipeline": "p"}, job, inst, "0x60")
            add("driftd_leader_fenced_out_total", {"pipeline": "p"}, job, inst, "0x60")
    for name, labels, values in _REGISTRY:
        for job, inst in (("one", "o"), ("many", "a"), ("many", "b")):
            add(name, labels, job, inst, values)
    for name, labels, leader, stale in _DECISION:
        add(name, labels, "one", "o", leader)
        add(name, labels, "many", "a", leader)
        add(name, labels, "many", "b", stale)
    for job, inst, lead, epoch in (("one", "o", 1, 3), ("many", "a", 1, 3), ("many", "b", 0, 0)):
        add("driftd_leader", {"pipeline": "p"}, job, inst, f"{lead}x60")
        add("driftd_leader_epoch", {"pipeline": "p"}, job, inst, f"{epoch}x60")
    # Model m's error objective comes from a generated rule; latency falls back to 0.99.
    series.append({"series": 'driftd:slo_objective{model="m", slo="errors"}', "values": "0.98x60"})
    return series


def _on_job(query: str, job: str) -> str:
    """``query`` with every selector restricted to ``job``."""

    def restrict(m: re.Match[str]) -> str:
        if m.group(1):  # a label list: its names are labels
            return m.group(1)
        name, matchers = m.group(2), m.group(3)
        inner = f'job="{job}"' + (f", {matchers[1:-1]}" if matchers and matchers[1:-1] else "")
        return f"{name}{{{inner}}}"

    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", query).replace("driftd:slo_objective", "")
    assert not re.search(r"[a-zA-Z_]+:[a-zA-Z_:]+", bare), f"a rule is not inlined: {query!r}"
    return re.sub(
        rf"({_GROUPING.pattern})|(?<![\w:])(driftd_[A-Za-z0-9_]+)(\{{[^}}]*\}})?", restrict, query
    )


# Leadership panels that show instances one by one, or count them, differ by design.
_PER_INSTANCE_PANELS = {
    "Leader",
    "Instances and leaders",
    "Leader per instance",
    "Merges",
    "Lease renewal failures and fenced-out writes",
}


def test_every_query_answers_the_same_on_one_instance_and_on_several(tmp_path: Path) -> None:
    """Partition series sum, registry series count once, decision series come from the leader
    (not from a follower's stale series): N instances show what one instance would."""
    promtool = _tool("promtool")
    linked = {
        (dash["uid"], title)
        for dash in _dashboards().values()
        for title, urls in _data_links(dash).items()
        if any("${__field.labels.model}" in u for u in urls)
    }
    checks: list[dict[str, Any]] = []
    for q in _queries():
        if q["panel"] in _PER_INSTANCE_PANELS:
            continue
        one, many = _on_job(q["query"], "one"), _on_job(q["query"], "many")
        exprs = [
            f"({one}) unless ignoring (job) ({many})",
            f"({many}) unless ignoring (job) ({one})",
            f"abs(({one}) - ignoring (job) ({many})) > 1e-6",
        ]
        if (q["dashboard"], q["panel"]) in linked:
            # The data link reads the series' model label: every series keeps it.
            exprs.append(f'({one}) unless on (model) driftd_model_version_info{{job="one"}}')
        for expr in exprs:
            checks.append({"expr": expr, "eval_time": "40m", "exp_samples": []})
        # Every panel query returns data here, optional ones too (the synthetic series
        # include a file source, feature detectors and a regressor).
        if q["kind"] == "panel":
            checks.append(
                {
                    "expr": f"count({one}) > bool 0",
                    "eval_time": "40m",
                    "exp_samples": [{"labels": "{}", "value": 1}],
                }
            )
    assert len(checks) > 100
    doc = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "one instance vs several",
                "interval": "1m",
                "input_series": _two_scenarios(),
                "promql_expr_test": checks,
            }
        ],
    }
    path = tmp_path / "multi_test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


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
