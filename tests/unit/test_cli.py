"""The command line: generate, replay --json, config check, status, --help, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftd.cli.main import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def generated(runner: CliRunner, tmp_path: Path) -> Path:
    out = tmp_path / "demo"
    res = runner.invoke(
        cli, ["generate", "--out", str(out), "--events", "2000", "--seed", "4", "--versions", "a,b"]
    )
    assert res.exit_code == 0, res.output
    return out


def test_help_lists_every_command(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["--help"])
    assert res.exit_code == 0
    for cmd in ("run", "replay", "generate", "status", "config", "db"):
        assert cmd in res.output


def test_generate_writes_events_config_and_truth(generated: Path) -> None:
    assert (generated / "events.jsonl").stat().st_size > 0
    truth = json.loads((generated / "truth.json").read_text())
    assert truth["models"]["fraud"]["predictions"] == 2000


def test_replay_json_summary_equals_the_truth(runner: CliRunner, generated: Path) -> None:
    res = runner.invoke(
        cli,
        [
            "replay",
            "--config",
            str(generated / "driftd.toml"),
            str(generated / "events.jsonl"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    truth = json.loads((generated / "truth.json").read_text())
    assert summary["models"] == truth["models"]
    assert summary["dead_lettered"] == truth["dead_lettered"]
    # The operational monitor's windows split predictions by version and add up.
    rows = summary["windows"]["fraud"]
    assert {r["version"] for r in rows} == {"a", "b"}
    assert sum(r["predictions"] for r in rows) == truth["models"]["fraud"]["predictions"]
    assert sum(r["joined"] for r in rows) == truth["models"]["fraud"]["joined"]
    dlq = Path(summary["dead_letter_file"]).read_text().splitlines()
    assert len(dlq) == truth["dead_lettered"]["total"]


def test_replay_prints_a_readable_summary(runner: CliRunner, generated: Path) -> None:
    res = runner.invoke(
        cli, ["replay", "--config", str(generated / "driftd.toml"), str(generated / "events.jsonl")]
    )
    assert res.exit_code == 0, res.output
    assert "events consumed" in res.output and "dead-lettered" in res.output


def test_config_check_prints_the_effective_config(runner: CliRunner, generated: Path) -> None:
    res = runner.invoke(
        cli,
        ["config", "check", str(generated / "driftd.toml")],
        env={"DRIFTD_JOIN__MAX_PENDING": "123"},
    )
    assert res.exit_code == 0, res.output
    effective = json.loads(res.stdout)
    assert effective["join"]["max_pending"] == 123  # the environment overrides the file
    assert effective["models"]["fraud"]["features"]["f0"] == "numeric"


def test_config_check_names_key_value_and_expectation(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.m]\nfeatures = { a = "numeric" }\nmax_label_delay_s = -1\n')
    res = runner.invoke(cli, ["config", "check", str(bad)])
    assert res.exit_code != 0
    assert "models.m.max_label_delay_s" in res.output
    assert "-1" in res.output and "greater than 0" in res.output


def test_status_reads_the_checkpoints(runner: CliRunner, generated: Path) -> None:
    cfg = generated / "driftd.toml"
    from driftd.config import load_settings
    from driftd.daemon import app as app_mod

    application = app_mod.build(load_settings(cfg, env={}), serve_metrics=False)
    try:
        app_mod.run(application)
    finally:
        application.close()
    res = runner.invoke(cli, ["status", "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.stdout)
    truth = json.loads((generated / "truth.json").read_text())
    assert status["models"] == truth["models"]
    assert [c["partition"] for c in status["checkpoints"]] == [0]


def test_config_check_warns_on_thresholds_in_raw_units(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "raw.toml"
    cfg.write_text(
        '[models.m]\nfeatures = { amount = "numeric", country = "categorical" }\n'
        "detectors = [\n"
        '  { detector = "PageHinkley", stream = "latency", standardize = false },\n'
        '  { detector = "CUSUM", stream = "feature:amount", params = { scale = 3.0 } },\n'
        '  { detector = "DDM", stream = "score" },\n'
        '  { detector = "PageHinkley", stream = "feature:amount" },\n'
        '  { detector = "DDM", stream = "feature:country=FR" },\n'
        "]\n"
    )
    res = runner.invoke(cli, ["config", "check", str(cfg)])
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert [w.split(" (")[0] for w in warnings] == [
        "warning: models.m.detectors[0]",  # PageHinkley left in milliseconds
        "warning: models.m.detectors[1]",  # CUSUM with a scale in raw units
        "warning: models.m.detectors[2]",  # DDM reading a score as 0/1
    ]  # standardised PageHinkley and DDM on a category indicator are fine
    assert "standardize = false" in warnings[0] and "params.scale" in warnings[1]
