"""``driftd rollout status|pause|resume|promote|abort`` through click on a SQLite registry with
a canary the controller started: --json is one parsable document with ISO times, status says
in words what each check tests, and the exit codes are Exit's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from driftd.cli.exitcodes import Exit
from driftd.cli.rollout import rollout
from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from driftd.registry.names import Stage
from driftd.registry.roles import Gate
from tests.rollout.test_controller import (
    Traffic,
    _controller,
    _run,
    champion_and_challenger,
)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[Registry, str, Path]]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    upgrade(engine)
    reg = Registry(engine)
    config = champion_and_challenger(reg, tmp_path)
    traffic = Traffic(5)
    _run(_controller(reg, config, traffic), reg, traffic, {"1": 0.005, "2": 0.005}, 3)
    yield reg, url, config
    engine.dispose()


def invoke(url: str, *args: str) -> Result:
    return CliRunner().invoke(rollout, [*args, "--db", url])


def doc(result: Result) -> dict:  # type: ignore[type-arg]
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)  # the whole of stdout is one document
    assert isinstance(parsed, dict)
    return parsed


def test_status_json_and_words(canary: tuple[Registry, str, Path]) -> None:
    _, url, config = canary
    d = doc(invoke(url, "status", "fraud", "--json"))
    assert d["phase"] == "running" and d["paused"] is False and d["canary"] == 2
    assert ISO.match(d["started_at"]) and ISO.match(d["updated_at"])
    assert d["traffic"] == {"1": 0.9, "2": 0.1}
    texts = [r["text"] for r in d["verdict"]["reasons"]]
    assert any(
        t.startswith("error rate (canary vs champion") and "rolls back at" in t for t in texts
    ), texts
    # With the config, the margins are named: latency is compared with a 10 % margin.
    res = CliRunner().invoke(rollout, ["status", "fraud", "--config", str(config), "--db", url])
    assert res.exit_code == 0, res.output
    assert "latency (canary vs champion p99, margin 10%)" in res.stdout
    assert re.search(r"rolls back at [\d.]+ \((not )?crossed\)", res.stdout)
    assert invoke(url, "status", "nosuch").exit_code == Exit.ERROR


def test_pause_resume_and_status_shows_it(canary: tuple[Registry, str, Path]) -> None:
    reg, url, _ = canary
    d = doc(invoke(url, "pause", "fraud", "--reason", "looking", "--actor", "alice", "--json"))
    assert d["paused"] is True and d["changed"] is True and ISO.match(d["at"])
    status = invoke(url, "status", "fraud")
    assert "PAUSED by alice" in status.stdout and "looking" in status.stdout
    assert doc(invoke(url, "status", "fraud", "--json"))["control"]["actor"] == "alice"
    assert doc(invoke(url, "pause", "fraud", "--json"))["changed"] is False
    d = doc(invoke(url, "resume", "fraud", "--actor", "alice", "--json"))
    assert d["paused"] is False and d["changed"] is True
    actions = [r.action for r in reg.audit_log(limit=10_000)]
    assert actions.count("rollout.pause") == 1 and actions.count("rollout.resume") == 1


def test_promote_is_confirmed_and_gated(canary: tuple[Registry, str, Path]) -> None:
    reg, url, _ = canary
    assert invoke(url, "promote", "fraud").exit_code == Exit.USAGE  # no --yes
    reg.set_gates({Stage.PRODUCTION: Gate(approvals=1)}, "admin")
    refused = invoke(url, "promote", "fraud", "--yes", "--json")
    assert refused.exit_code == Exit.REFUSED and "approval" in refused.output
    reg.approve("fraud", 2, "production", "dave", "approver")
    d = doc(invoke(url, "promote", "fraud", "--yes", "--actor", "carol", "--json"))
    assert d["phase"] == "promoted" and d["actor"] == "carol"
    assert reg.get_version("fraud", 2).stage == "production"
    gone = invoke(url, "pause", "fraud")
    assert gone.exit_code == Exit.ERROR and "no rollout in progress" in gone.output
    assert doc(invoke(url, "status", "fraud", "--json"))["phase"] == "promoted"  # exit 0


def test_abort_rolls_back(canary: tuple[Registry, str, Path]) -> None:
    reg, url, _ = canary
    assert invoke(url, "abort", "fraud").exit_code == Exit.USAGE
    d = doc(invoke(url, "abort", "fraud", "--yes", "--reason", "bad", "--json"))
    assert d["phase"] == "rolled_back"
    assert reg.traffic("fraud") == {1: 1.0}
    assert invoke(url, "abort", "fraud", "--yes").exit_code == Exit.ERROR
    assert reg.verify_audit().ok
    # status still prints the rolled-back rollout, then exits HALTED (4) for a pipeline to stop
    halted = invoke(url, "status", "fraud", "--json")
    assert halted.exit_code == Exit.HALTED
    assert json.loads(halted.stdout)["phase"] == "rolled_back"
