"""``driftd rules``: YAML on stdout or into --out, JSON with --json, a config error is exit 2
naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.cli.rules import rules

CONFIG = '[models.m]\nfeatures = { x = "numeric" }\n[models.m.slo]\navailability = 0.999\n'


def _config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "driftd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_on_stdout_names_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = CliRunner().invoke(rules, ["--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"--config {config}" in result.output.splitlines()[0]
    doc = yaml.safe_load(result.output)
    exprs = [r["expr"] for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert any("(14.4 * 0.001)" in e for e in exprs)


def test_out_writes_the_same_yaml(tmp_path: Path) -> None:
    config, out = _config(tmp_path), tmp_path / "rules.yml"
    shown = CliRunner().invoke(rules, ["--config", str(config)]).output
    result = CliRunner().invoke(rules, ["--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == shown


def test_json_prints_the_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(rules, ["--config", str(_config(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["groups"][0]["name"] == "driftd-leader-recording"


def test_a_bad_slo_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    config = _config(tmp_path, CONFIG + "latency_s = 0.3\n")
    result = CliRunner().invoke(cli, ["rules", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "models.m.slo.latency_s" in result.output
