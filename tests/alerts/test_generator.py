"""The rules generator (driftd.alerts) and its configuration: each model's targets reach its
expressions, models with different SLOs get different thresholds (checked in promtool at the
thresholds), models not configured get the defaults, and bad SLO settings fail with the key,
the value and what was expected."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftd.alerts.document import rules_document, rules_yaml
from driftd.alerts.leader import LEADER_RULES, leader_rules
from driftd.alerts.promql import cohorts, duration, label
from driftd.config import Settings, load_settings
from driftd.config.slo import LATENCY_BUCKETS_S
from driftd.errors import ConfigError
from driftd.rollout.counts import PROMETHEUS_BUCKETS_S
from tests.alerts.test_rules import promtool

FEATURES = {"features": {"x": "numeric"}}


def settings(**models: dict[str, Any]) -> Settings:
    return Settings(models={name: {**FEATURES, **m} for name, m in models.items()})


def rules(s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Rules by alert or record name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for group in rules_document(s)["groups"]:
        for r in group["rules"]:
            out.setdefault(r.get("alert") or r["record"], []).append(r)
    return out


def expr(s: Settings, name: str) -> str:
    (rule,) = rules(s)[name]
    return str(rule["expr"])


FIRING = (
    'ALERTS{{alertname="DriftdErrorBudgetBurnFast",alertstate="firing",model="{m}",'
    'severity="page",slo="errors",version="{v}"}}'
)
TWO = {
    "strict": {"slo": {"availability": 0.999, "latency_s": 1.0, "latency_target": 0.95}},
    "plain": {},
}


def test_a_models_targets_appear_in_its_expressions() -> None:
    s = settings(**TWO)
    fast = expr(s, "DriftdErrorBudgetBurnFast")
    assert 'ratio_rate1h{model="strict"} > (14.4 * 0.001)' in fast
    assert 'ratio_rate1h{model!~"strict"} > (14.4 * 0.005)' in fast
    latency = expr(s, "DriftdLatencyBudgetBurnSlow")
    assert 'ratio_rate6h{model="strict"} > (6 * 0.05)' in latency
    assert 'ratio_rate6h{model!~"strict"} > (6 * 0.01)' in latency
    slow_share = expr(s, "model_version:driftd_prediction_latency_slow:ratio_rate5m")
    assert 'le="1.0", model="strict"' in slow_share
    assert 'le="0.5", model!~"strict"' in slow_share


def test_models_with_the_same_targets_share_one_part_and_defaults_need_no_matcher() -> None:
    s = settings(a={}, b={})
    assert expr(s, "DriftdErrorBudgetBurnFast") == (
        "model_version:driftd_prediction_errors:ratio_rate1h > (14.4 * 0.005)\nand\n"
        "model_version:driftd_prediction_errors:ratio_rate5m > (14.4 * 0.005)"
    )
    same = settings(a={"slo": {"availability": 0.99}}, b={"slo": {"availability": 0.99}})
    assert 'model=~"a|b"' in expr(same, "DriftdErrorBudgetBurnSteady")


def test_objectives_are_recorded_per_configured_model() -> None:
    objectives = rules(settings(**TWO))["driftd:slo_objective"]
    got = {(r["labels"]["model"], r["labels"]["slo"]): r["expr"] for r in objectives}
    assert got == {
        ("plain", "errors"): "vector(0.995)",
        ("plain", "latency"): "vector(0.99)",
        ("strict", "errors"): "vector(0.999)",
        ("strict", "latency"): "vector(0.95)",
    }


def test_quality_follows_the_task_and_stall_limits_can_be_turned_off() -> None:
    s = settings(
        reg={"task": "regression", "slo": {"rmse_rise": 0.5}}, clf={"slo": {"labels_stalled_s": 0}}
    )
    by_metric = {r["labels"]["metric"]: r["expr"] for r in rules(s)["DriftdQualityDegraded"]}
    assert 'driftd_rmse:rate1h{model="reg"}\n  >\n  1.5 *' in by_metric["rmse"]
    assert 'driftd_accuracy:ratio_rate6h{model!~"reg"}' in by_metric["accuracy"]
    stalled = expr(s, "DriftdLabelsStalled")
    assert 'model!~"clf"' in stalled and 'model="clf"' not in stalled


def test_retrain_overdue_follows_each_models_timeout() -> None:
    s = settings(fast={"retrain": {"trainer": "m:f", "timeout_s": 900}})
    e = expr(s, "DriftdRetrainJobRunningTooLong")
    assert 'model="fast"}) > 1500' in e and 'model!~"fast"}) > 4200' in e


def test_model_names_are_quoted_and_escaped_for_prometheus() -> None:
    (default, odd) = cohorts({'a.b"c': 2, "d": 1}, 1)
    assert odd.matcher == label("model", 'a.b"c') == 'model="a.b\\"c"'
    assert default.matcher == 'model!~"a\\\\.b\\"c"'


def test_durations_use_the_largest_whole_unit() -> None:
    assert [duration(s) for s in (45, 300, 5400, 3600, 86_400)] == ["45s", "5m", "90m", "1h", "1d"]


def test_the_leader_rules_are_the_shared_ones() -> None:
    got = [r for r in rules_document(settings(m={}))["groups"][0]["rules"]]
    assert got == leader_rules() and [r["record"] for r in got] == list(LEADER_RULES)


def test_the_latency_buckets_are_the_exporters() -> None:
    assert LATENCY_BUCKETS_S == PROMETHEUS_BUCKETS_S


def test_the_yaml_loads_back_as_the_document() -> None:
    s = settings(**TWO, **{"we|rd": {"slo": {"availability": 0.98}}})
    assert yaml.safe_load(rules_yaml(s)) == rules_document(s)


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        ("[models.m.slo]\nlatency_s = 0.3", "models.m.slo.latency_s", "0.005, 0.01"),
        ("[models.m.slo]\navailability = 1.0", "models.m.slo.availability", "less than 1"),
        ("[models.m.slo]\nlabels_stalled_s = 30", "models.m.slo.labels_stalled_s", "at least 300"),
        (
            "[models.m.slo]\npredictions_stalled_s = 90000",
            "models.m.slo.predictions_stalled_s",
            "86400",
        ),
        ("[models.m.slo]\nbudget = 1", "models.m.slo.budget", ""),
        ('[alerts]\njob = "a b"', "alerts.job", ""),
    ],
)
def test_bad_slo_settings_name_the_key_and_what_was_expected(
    tmp_path: Path, table: str, key: str, expected: str
) -> None:
    config = tmp_path / "driftd.toml"
    config.write_text(f'[models.m]\nfeatures = {{ x = "numeric" }}\n{table}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert key in str(err.value) and expected in str(err.value)


def test_two_models_page_at_their_own_thresholds_in_promtool(tmp_path: Path) -> None:
    """strict (99.9 %) pages at 14.4 * 0.001 = 0.0144; plain (99.5 %) only at 0.072."""
    tool = promtool()
    (tmp_path / "rules.yml").write_text(rules_yaml(settings(**TWO)), encoding="utf-8")

    def series(model: str, version: str, errors: float) -> list[dict[str, str]]:
        labels = f'model="{model}",version="{version}"'
        return [
            {"series": f"driftd_predictions_total{{{labels}}}", "values": "0+1000x70"},
            {"series": f"driftd_prediction_errors_total{{{labels}}}", "values": f"0+{errors}x70"},
        ]

    inputs = series("strict", "above", 14.5) + series("strict", "below", 14.3)
    inputs += series("plain", "strict-above", 14.5) + series("plain", "above", 72.1)
    doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertname="DriftdErrorBudgetBurnFast"}',
                        "eval_time": "65m",
                        "exp_samples": [
                            {
                                "labels": FIRING.format(m=m, v=v),
                                "value": 1,
                            }
                            for m, v in (("plain", "above"), ("strict", "above"))
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    proc = subprocess.run(
        [tool, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
