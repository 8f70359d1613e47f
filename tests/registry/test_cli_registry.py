"""``driftd registry | lineage | audit | token | db upgrade`` end to end, on both databases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.registry import schema as t


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DRIFTD_REGISTRY__SECRET", "cli-secret")
    monkeypatch.setenv("DRIFTD_REGISTRY__ARTIFACT_ROOTS", json.dumps([str(tmp_path)]))
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True, actor: str = "alice") -> str:
        argv = [*args, "--db", db_url]
        if args[0] in ("registry",) and args[1] in ("register", "promote", "approve", "rollback"):
            argv += ["--actor", actor]
        res = runner.invoke(cli, argv)
        if ok:
            assert res.exit_code == 0, res.output
        else:
            assert res.exit_code != 0, res.output
            assert "Traceback" not in res.output
        return res.output

    return invoke


def test_register_promote_approve_lineage_and_history(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    artifact = tmp_path / "model.pt"
    artifact.write_bytes(b"weights" * 100)
    out = run("registry", "register", "fraud", "--artifact", str(artifact), "--stage", "staging")
    assert "registered models:/fraud/1 (staging)" in out
    shown = json.loads(run("registry", "show", "fraud/1", "--json"))
    assert shown["artifact_sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert shown["artifact_size"] == 700 and shown["created_by"] == "alice"

    err = run("registry", "approve", "fraud/1", "--for", "production", ok=False)
    assert "alice created fraud/1 and cannot approve it" in err
    run("registry", "approve", "fraud/1", "--for", "production", actor="bob")
    out = run("registry", "promote", "fraud/1", "--to", "production", actor="carol")
    assert "fraud/1 is now in production (champion)" in out
    err = run("registry", "promote", "fraud@champion", "--to", "staging", ok=False)
    assert "cannot move from production to staging" in err

    tree = json.loads(run("lineage", "models:/fraud@champion", "--json"))
    assert tree["uri"] == "models:/fraud/1"
    assert [a["approver"] for a in tree["approvals"]] == ["bob"]
    printed = run("lineage", "fraud@champion")
    assert "models:/fraud/1" in printed and "bob (approver)" in printed

    hist = json.loads(run("registry", "history", "fraud", "--json"))
    champion = [h for h in hist if h["name"] == "champion"]
    assert len(champion) == 1 and champion[0]["version"] == 1
    at = json.loads(run("registry", "history", "fraud", "--at", "1e12", "--json"))
    assert at["version"] == 1
    listed = json.loads(run("registry", "ls", "--json"))
    assert listed[0]["aliases"] == {"champion": 1}
    assert "fraud" in run("registry", "ls") and "champion" in run("registry", "show", "fraud")


def test_unknown_things_are_clean_errors(run) -> None:  # type: ignore[no-untyped-def]
    assert "model 'nope' does not exist" in run("registry", "show", "nope", ok=False)
    assert "invalid model reference" in run("registry", "show", "nope/x", ok=False)
    err = run("registry", "register", "m", "--artifact", "s3://b/k", ok=False)
    assert "give its --sha256" in err


def test_register_refuses_artifacts_outside_the_policy(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    remote = ["--sha256", "ab" * 32, "--size", "1"]
    for artifact, words in (
        ("/etc/passwd", "'file:///etc/passwd' is outside the allowed roots"),
        ("../../../../../../../../etc/passwd", "'file:///etc/passwd' is outside the allowed"),
        ("http://169.254.169.254/latest/meta-data/", "scheme 'http', which is not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("javascript:alert(1)", "scheme 'javascript', which is not allowed"),
        ("s3://b/k\r\nforged: yes", "control or invisible character '\\r'"),
    ):
        err = run("registry", "register", "m", "--artifact", artifact, *remote, ok=False)
        assert words in err, err
        assert "\r" not in err and "\nforged" not in err
    err = run("registry", "register", "m", "--artifact", "/etc/passwd", ok=False)
    assert f"local files under {tmp_path} (registry.artifact_roots)" in err
    assert "schemes file, gs, https, s3 (registry.artifact_schemes)" in err
    assert json.loads(run("registry", "ls", "--json")) == []  # nothing was registered


def test_artifact_settings_from_the_environment(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DRIFTD_REGISTRY__ARTIFACT_SCHEMES", '["s3"]')
    remote = ["--sha256", "ab" * 32, "--size", "1"]
    run("registry", "register", "m", "--artifact", "s3://b/k", *remote)
    err = run("registry", "register", "m", "--artifact", "gs://b/k", *remote, ok=False)
    assert "scheme 'gs', which is not allowed; allowed: schemes s3" in err
    monkeypatch.setenv("DRIFTD_REGISTRY__ARTIFACT_ROOTS", "/srv/models")
    err = run("registry", "ls", ok=False)
    assert "DRIFTD_REGISTRY__ARTIFACT_ROOTS: expected a JSON list" in err


def test_audit_verify_names_the_tampered_record(run, db_url: str) -> None:  # type: ignore[no-untyped-def]
    run("registry", "register", "m", "--artifact", "s3://b/k", "--sha256", "ab" * 32, "--size", "1")
    run("registry", "register", "m", "--artifact", "s3://b/k", "--sha256", "ab" * 32, "--size", "1")
    assert "audit log OK" in run("audit", "verify")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(t.audit.update().where(t.audit.c.seq == 2).values(actor="eve"))
    engine.dispose()
    err = run("audit", "verify", ok=False)
    assert "record 2 altered" in err
    result = json.loads(run("audit", "verify", "--json", ok=False))
    assert result["ok"] is False and result["seq"] == 2


def test_tokens_are_shown_once_and_stored_hashed(run, db_url: str) -> None:  # type: ignore[no-untyped-def]
    secret = run("token", "create", "--name", "ci-bot", "--role", "approver").splitlines()[0]
    assert secret.startswith("drt_")
    listed = json.loads(run("token", "list", "--json"))
    assert [(r["name"], r["role"], r["revoked"]) for r in listed] == [("ci-bot", "approver", False)]
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.tokens)).one()
    engine.dispose()
    assert secret.split("_", 2)[2] not in json.dumps(list(stored), default=str)
    run("token", "revoke", listed[0]["id"])
    assert json.loads(run("token", "list", "--json"))[0]["revoked"] is True


def test_db_upgrade_brings_an_outdated_database_up(db_url: str) -> None:
    from driftd.db import current_revision, head_revision, make_engine, upgrade

    engine = make_engine(db_url)
    upgrade(engine, "0002")
    res = CliRunner().invoke(cli, ["registry", "ls", "--db", db_url])
    assert res.exit_code != 0 and "driftd db upgrade" in res.output
    res = CliRunner().invoke(cli, ["db", "upgrade", "--db", db_url])
    assert res.exit_code == 0, res.output
    assert f"0002 → {head_revision()}" in res.output
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_outbox_run_once_delivers_and_status_reports(db_url: str, tmp_path: Path) -> None:
    from tests.registry.test_outbox import Receiver

    receiver = Receiver()
    config = tmp_path / "driftd.toml"
    config.write_text(
        f"""
[models.fraud]
features = {{ amount = "numeric" }}
[registry]
url = "{db_url}"
[[registry.webhooks]]
name = "ops"
url = "{receiver.url}"
secret = "s3cret"
replay = true
[registry.gates.production]
approvals = 1
"""
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["registry", "gates", "--config", str(config), "--actor", "admin"])
    assert res.exit_code == 0 and "production: 1 approval(s) from approver" in res.output
    args = ["registry", "register", "fraud", "--artifact", "s3://b/k", "--sha256", "ab" * 32]
    res = runner.invoke(cli, [*args, "--size", "1", "--config", str(config)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["outbox", "run", "--once", "--config", str(config)])
    assert res.exit_code == 0 and "delivered 1 event(s)" in res.output, res.output
    assert [json.loads(d.body)["data"]["event"] for d in receiver.ok()] == ["version_created"]
    res = runner.invoke(cli, ["outbox", "status", "--json", "--config", str(config)])
    rows = json.loads(res.stdout)
    assert rows[0]["target"] == "ops" and rows[0]["pending"] == 0 and rows[0]["dead"] == 0
    receiver.server.shutdown()
