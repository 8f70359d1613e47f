"""Human CLI output shows stored text escaped: ESC sequences, bidi overrides and CR/LF in a
description, reason, actor or error cannot change the terminal or forge lines, and rich markup
in them is printed, not applied."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftd.cli.main import cli

EVIL = "x\x1b[2J\x1b]8;;http://evil\x07\u202eFORGED\r\nline2 [red]markup[/red]"
SHA = "ab" * 32


def unsafe(text: str) -> list[str]:
    """Characters that would act on the terminal instead of being shown."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n"]


def assert_escaped(out: str) -> None:
    assert not unsafe(out), sorted(set(unsafe(out)))
    assert "FORGED\\r\\nline2" in out and "\\x1b[2J" in out and "\\u202e" in out, out
    assert "[red]markup[/red]" in out, out
    assert "\nline2" not in out


@pytest.fixture
def cli_run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DRIFTD_REGISTRY__SECRET", "cli-secret")
    monkeypatch.setenv("DRIFTD_REGISTRY__ARTIFACT_ROOTS", json.dumps([str(tmp_path)]))
    runner = CliRunner(env={"COLUMNS": "1000"})

    def invoke(*args: str, ok: bool = True) -> str:
        res = runner.invoke(cli, [*args, "--db", db_url])
        assert (res.exit_code == 0) == ok, res.output
        return res.output

    return invoke


def test_registry_outputs_escape_stored_text(cli_run) -> None:  # type: ignore[no-untyped-def]
    remote = ["--artifact", "s3://b/k", "--sha256", SHA, "--size", "1"]
    cli_run("registry", "register", "fraud", *remote, "--description", EVIL, "--actor", EVIL)
    cli_run("registry", "register", "fraud", *remote, "--actor", "bob")
    cli_run("registry", "promote", "fraud/1", "--to", "staging", "--reason", EVIL, "--actor", "ann")
    cli_run("registry", "approve", "fraud/1", "--for", "production", "--comment", EVIL,
            "--actor", "bob")  # fmt: skip
    cli_run("registry", "promote", "fraud/1", "--to", "production", "--actor", "ann")
    cli_run("registry", "alias", "fraud/2", "challenger", "--actor", EVIL)
    for args in (
        ("registry", "show", "fraud/1"),
        ("registry", "show", "fraud"),
        ("registry", "history", "fraud"),
        ("lineage", "fraud@champion"),
        ("audit", "log"),
    ):
        assert_escaped(cli_run(*args))
    # The CLI's own lines that repeat what was typed are escaped too.
    assert_escaped(cli_run("registry", "approve", "fraud/2", "--for", "staging", "--actor", EVIL))


def test_errors_and_token_names_are_escaped(cli_run) -> None:  # type: ignore[no-untyped-def]
    remote = ["--artifact", "s3://b/k", "--sha256", SHA, "--size", "1"]
    cli_run("registry", "register", "m", *remote, "--actor", EVIL)
    err = cli_run("registry", "approve", "m/1", "--for", "staging", "--actor", EVIL, ok=False)
    assert "cannot approve" in err
    assert_escaped(err)
    cli_run("token", "create", "--name", EVIL, "--role", "viewer", "--actor", EVIL)
    assert_escaped(cli_run("token", "list"))


def test_retrain_jobs_table_escapes_errors(db_url: str, tmp_path: Path) -> None:
    from driftd.db import make_engine, upgrade
    from driftd.retrain.jobs import JobQueue

    engine = make_engine(db_url)
    upgrade(engine)
    queue = JobQueue(engine)
    queue.submit("fraud", {"kind": "manual", "key": "1"}, {}, max_attempts=1)
    job = queue.claim("w", 60)
    assert job is not None and queue.fail(job.id, "w", EVIL)
    engine.dispose()
    config = tmp_path / "driftd.toml"
    config.write_text(
        f'[registry]\nurl = "{db_url}"\n[models.fraud]\nfeatures = {{ amount = "numeric" }}\n'
    )
    res = CliRunner(env={"COLUMNS": "1000"}).invoke(cli, ["retrain", "jobs", "-c", str(config)])
    assert res.exit_code == 0, res.output
    assert_escaped(res.output)
