"""Errors a person can act on, through the real command line: one clear line on stderr and no
traceback; exit code 2 for a bad configuration, 1 for a failure such as a database that cannot
be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = '[models.fraud]\nfeatures = { amount = "numeric", country = "categorical" }\n'
SCRIPT = Path(sys.executable).with_name("driftd")  # the console script people run


def driftd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "driftd.cli"]
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRIFTD_")}
    return subprocess.run(
        [*cmd, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=120
    )


def one_line(res: subprocess.CompletedProcess[str]) -> str:
    """The single line of stderr, which must start with "Error: "."""
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr, res.stderr
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: "), res.stderr
    return lines[0]


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "driftd.toml"
    path.write_text(text)
    return str(path)


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "driftd.toml"
    path.write_bytes(MODEL.encode() + b'[pipeline]\nname = "caf\xe9"\n')
    res = driftd("config", "check", str(path))
    line = one_line(res)
    assert res.returncode == 2
    assert str(path) in line and "not UTF-8" in line and "line 4" in line


def test_a_checkpoint_url_with_an_unknown_scheme_is_caught_by_config_check(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, MODEL + '[checkpoint]\nurl = "mysql://ops:hunter2@db/state"\n')
    res = driftd("config", "check", path)
    line = one_line(res)
    assert res.returncode == 2 and res.stdout == ""
    assert "checkpoint.url" in line and "mysql://ops:***@db/state" in line
    assert "sqlite" in line and "postgresql" in line and "hunter2" not in line


def test_a_database_url_with_an_unknown_scheme_on_the_command_line(tmp_path: Path) -> None:
    res = driftd("db", "upgrade", "--db", "mysql://db/state")
    line = one_line(res)
    assert res.returncode == 2
    assert "'mysql://db/state'" in line and "postgresql" in line


@pytest.mark.parametrize(
    "command",
    [["db", "upgrade", "--config"], ["status", "--config"], ["run", "--config"]],
    ids=["db-upgrade", "status", "run"],
)
def test_postgresql_unreachable_says_where_and_what_to_check(
    tmp_path: Path, command: list[str]
) -> None:
    url = "postgresql://driftd:hunter2@127.0.0.1:1/driftd"  # port 1: nothing listens there
    text = MODEL + f'[source]\nkind = "file"\npaths = ["{tmp_path}/e.jsonl"]\n'
    text += f'[checkpoint]\nurl = "{url}"\n[metrics]\nenabled = false\n'
    res = driftd(*command, config(tmp_path, text))
    line = one_line(res)
    assert res.returncode == 1
    assert "PostgreSQL" in line and "127.0.0.1" in line and "port 1" in line
    assert "database driftd" in line and "user driftd" in line and "hunter2" not in line
    assert "check that" in line.lower() and "checkpoint.url" in line


def test_bad_json_in_a_models_environment_variable(tmp_path: Path) -> None:
    path = config(tmp_path, MODEL)
    value = '{"amount": "numeric", "country": "categorical",' + ' "x": "numeric",' * 20 + "}"
    res = driftd("config", "check", path, env={"DRIFTD_MODELS__FRAUD__FEATURES": value})
    line = one_line(res)
    assert res.returncode == 2
    assert "DRIFTD_MODELS__FRAUD__FEATURES=" in line and value[:40] in line
    assert value not in line and "…" in line  # shortened
    assert "not valid JSON" in line and "line 1 column" in line


def test_a_bad_detector_stream_names_its_path(tmp_path: Path) -> None:
    text = MODEL + (
        '[[models.fraud.detectors]]\ndetector = "ADWIN"\n'
        '[[models.fraud.detectors]]\ndetector = "ADWIN"\nstream = "feature:colour"\n'
    )
    res = driftd("config", "check", config(tmp_path, text))
    line = one_line(res)
    assert res.returncode == 2
    assert "models.fraud.detectors[1].stream: got 'feature:colour'" in line
    assert "'features'" not in line


def test_bad_detector_params_are_caught_by_config_check_and_at_start(tmp_path: Path) -> None:
    text = MODEL + (
        '[[models.fraud.detectors]]\ndetector = "ADWIN"\n'
        '[[models.fraud.detectors]]\ndetector = "PageHinkley"\nparams = { delta = -1.0 }\n'
    )
    path = config(tmp_path, text)
    events = tmp_path / "events.jsonl"
    events.write_text("")
    commands = (("config", "check", path), ("replay", "--config", path, str(events)))
    for args in (*commands, ("run", "--config", path)):
        res = driftd(*args)
        line = one_line(res)
        assert res.returncode == 2, (args, res.stderr)
        assert "models.fraud.detectors[1].params: got {'delta': -1.0}" in line, line
        assert "invalid params for PageHinkley" in line


def test_a_good_config_still_checks(tmp_path: Path) -> None:
    res = driftd("config", "check", config(tmp_path, MODEL))
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().endswith(": OK")


@pytest.mark.parametrize(
    "command",
    [("registry", "ls"), ("retrain", "jobs"), ("audit", "verify")],
    ids=["registry", "retrain", "audit"],
)
def test_every_command_group_exits_2_on_a_bad_config(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    path = config(tmp_path, MODEL + '[registry]\nurl = "mysql://db/registry"\n')
    res = driftd(*command, "--config", path)
    line = one_line(res)
    assert res.returncode == 2, res.stderr
    assert "registry.url" in line and "mysql://db/registry" in line


def test_the_help_lists_every_exit_code_and_the_json_error() -> None:
    from driftd.cli.exitcodes import MEANING, Exit

    res = driftd("--help")
    assert res.returncode == 0
    listed = res.stdout.split("Exit codes:")[1]
    for code in Exit:
        assert f"  {int(code)}  {MEANING[code]}" in listed, code
    assert '{"error": "<message>", "exit_code": N}' in listed


def test_under_json_an_error_is_one_json_document_on_stdout(tmp_path: Path) -> None:
    res = driftd("db", "upgrade", "--db", "mysql://db/state", "--json")
    line = one_line(res)  # people still get their line on stderr
    doc = json.loads(res.stdout)
    assert res.returncode == 2 and doc == {"error": line.removeprefix("Error: "), "exit_code": 2}
    res = driftd("registry", "ls", "--json")  # click's own usage error, before any work
    assert res.returncode == 2 and json.loads(res.stdout)["exit_code"] == 2
    res = driftd("no-such-command", "--json")
    assert res.returncode == 2 and "no-such-command" in json.loads(res.stdout)["error"]


def test_under_json_stdout_holds_the_result_and_nothing_else(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    res = driftd("db", "upgrade", "--db", url, "--json")
    assert res.returncode == 0, res.stderr
    (done,) = json.loads(res.stdout)["upgraded"]
    assert done["from"] is None and done["to"]
    res = driftd("registry", "ls", "--db", url, "--json", env={"DRIFTD_REGISTRY__SECRET": "s"})
    assert res.returncode == 0 and json.loads(res.stdout) == []
