"""Stable exit codes on a real registry (SQLite and PostgreSQL): a gate that refuses and an
approval that is not allowed exit 3, a failed audit verification 5, a missing object 1; with
``--json`` the failure is one JSON document on stdout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from driftd.cli.exitcodes import Exit
from driftd.cli.main import cli
from driftd.registry import Registry

SHA = "ab" * 32


@pytest.fixture
def reg(db_url: str) -> Any:
    registry = Registry.open(db_url, "cli-secret")
    registry.register_version("fraud", "file:///m", SHA, 1, "alice", stage="staging")
    yield registry
    registry.engine.dispose()


def driftd(db_url: str, *args: str) -> Result:
    res = CliRunner().invoke(
        cli, [*args, "--db", db_url], env={"DRIFTD_REGISTRY__SECRET": "cli-secret"}
    )
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res


def error(res: Result) -> str:
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == res.exit_code
    assert "Traceback" not in res.stderr and res.stderr.startswith("Error: ")
    return str(doc["error"])


def test_an_approval_that_is_not_allowed_is_refused(reg: Any, db_url: str) -> None:
    res = driftd(db_url, "registry", "approve", "fraud/1", "--for", "production",
                 "--actor", "alice", "--json")  # fmt: skip
    assert res.exit_code == Exit.REFUSED
    assert "alice created fraud/1 and cannot approve it" in error(res)


def test_a_gate_that_is_not_satisfied_is_refused(reg: Any, db_url: str) -> None:
    from driftd.registry.names import Stage
    from driftd.registry.roles import Gate

    reg.set_gates({Stage.PRODUCTION: Gate(approvals=1)}, "ops")
    res = driftd(db_url, "registry", "promote", "fraud/1", "--to", "production", "--json")
    assert res.exit_code == Exit.REFUSED, res.stdout
    assert "approval" in error(res)
    res = driftd(db_url, "registry", "approve", "fraud/1", "--for", "production", "--actor", "bob")
    assert res.exit_code == Exit.OK, res.output
    res = driftd(db_url, "registry", "promote", "fraud/1", "--to", "production", "--json")
    assert res.exit_code == Exit.OK, res.output
    doc = json.loads(res.stdout)
    assert doc["stage"] == "production" and doc["created_at"].endswith(("Z", "+00:00"))


def test_a_failed_audit_verification_exits_5_with_its_result(reg: Any, db_url: str) -> None:
    head = reg.verify_audit().head_seq
    res = driftd(db_url, "audit", "verify", "--json", "--expect-head", f"{head + 1}:{SHA}")
    assert res.exit_code == Exit.VERIFY_FAILED
    assert json.loads(res.stdout)["seq"] == head + 1  # the result itself: one document
    res = driftd(db_url, "audit", "verify", "--json")
    assert res.exit_code == Exit.OK and json.loads(res.stdout)["ok"] is True


def test_a_missing_object_exits_1(reg: Any, db_url: str) -> None:
    res = driftd(db_url, "registry", "show", "nope/1", "--json")
    assert res.exit_code == Exit.ERROR
    assert "nope" in error(res)
