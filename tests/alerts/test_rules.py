"""dashboards/prometheus/rules.yml as Prometheus reads it: generated from the reference config
and current, loads in promtool, every alert fires and stays quiet in rules_test.yml, each has
its runbook, annotations and severity, and burn-rate alerts have no ``for``. promtool tests
skip when it is missing, except under CI=true where they fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftd.alerts.document import rules_yaml
from driftd.config import load_settings
from tests.services import in_ci

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "dashboards" / "prometheus"
RULES = PROM / "rules.yml"
UNIT_TESTS = ("rules_test.yml", "rules_test_long.yml")
# The configuration rules.yml is generated from (named in its header).
REFERENCE_CONFIG = "deploy/compose/driftd.toml"
SEVERITIES = {"page", "ticket", "warning"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if in_ci():
            pytest.fail("promtool is not installed; it is required under CI=true")
        pytest.skip("promtool is not installed (Debian package: prometheus)")
    return path


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def unit_tests() -> list[dict[str, Any]]:
    out = []
    for name in UNIT_TESTS:
        out += yaml.safe_load((PROM / name).read_text(encoding="utf-8"))["tests"]
    return out


def test_rules_yml_is_what_the_reference_config_generates() -> None:
    settings = load_settings(ROOT / REFERENCE_CONFIG, env={})
    expected = rules_yaml(settings, source=REFERENCE_CONFIG)
    assert RULES.read_text(encoding="utf-8") == expected, (
        f"rules.yml is stale: driftd rules --config {REFERENCE_CONFIG} "
        f"--out {RULES.relative_to(ROOT)}"
    )
    assert f"--config {REFERENCE_CONFIG}" in expected.splitlines()[0]


def test_promtool_loads_the_rules() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", UNIT_TESTS)
def test_promtool_unit_tests_pass(name: str) -> None:
    proc = subprocess.run(
        [promtool(), "test", "rules", name], cwd=PROM, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    alerts = {r["alert"] for r in alert_rules()}
    checks = [t for case in unit_tests() for t in case.get("alert_rule_test", [])]
    fired = {t["alertname"] for t in checks if t.get("exp_alerts")}
    quiet = {t["alertname"] for t in checks if not t.get("exp_alerts")}
    assert alerts - fired == set(), f"never shown firing: {sorted(alerts - fired)}"
    assert alerts - quiet == set(), f"never shown quiet: {sorted(alerts - quiet)}"
    assert fired | quiet <= alerts, f"tests of unknown alerts: {sorted((fired | quiet) - alerts)}"


def test_every_alert_has_a_runbook_annotations_and_a_severity() -> None:
    for rule in alert_rules():
        name, notes = rule["alert"], rule["annotations"]
        assert {"summary", "description", "runbook_url", "dashboard"} <= set(notes), name
        assert notes["runbook_url"] == f"docs/runbooks/{name}.md", name
        assert (ROOT / notes["runbook_url"]).is_file(), f"no runbook for {name}"
        assert notes["dashboard"].startswith("http://localhost:3000/d/driftd-"), name
        assert rule["labels"]["severity"] in SEVERITIES, name


def test_burn_rate_alerts_have_no_for_and_both_windows() -> None:
    burns = [r for r in alert_rules() if "BudgetBurn" in r["alert"]]
    assert len(burns) == 6
    windows = {
        "Fast": ("1h", "5m", "14.4 *"),
        "Slow": ("6h", "30m", "6 *"),
        "Steady": ("3d", "6h", "1 *"),
    }
    for rule in burns:
        assert "for" not in rule, rule["alert"]
        long, short, factor = windows[rule["alert"].rsplit("Burn", 1)[1]]
        assert f"ratio_rate{long} >" in rule["expr"] and f"ratio_rate{short} >" in rule["expr"]
        assert f"({factor} " in rule["expr"]
        page = rule["alert"].endswith(("Fast", "Slow"))
        assert rule["labels"]["severity"] == ("page" if page else "ticket")


def test_the_job_comes_from_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "driftd.toml"
    config.write_text(
        '[alerts]\njob = "ml-monitor"\n[models.m]\nfeatures = { x = "numeric" }\n',
        encoding="utf-8",
    )
    text = rules_yaml(load_settings(config, env={}))
    assert 'up{job="ml-monitor"} == 0' in text
    assert 'job="driftd"' not in text
