"""The whole loop end to end on the embedded default (`driftd demo`): drift → alarm → retrain →
challenger beats champion with CIs → canary → promoted; a latency-regressed challenger → canary
→ rolled back. Everything real: file source, pipeline, SQLite registry, subprocess retrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.config import load_settings
from driftd.registry.configure import open_registry


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = CliRunner().invoke(cli, ["demo", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["ok"] and result["champion"] == 2
    what = [e["what"] for e in result["timeline"]]
    order = ["drift alarm", "v2 trained", "v2 → canary", "v2 → production", "v3 → canary",
             "v3 → rolled_back"]  # fmt: skip
    positions = [next(i for i, w in enumerate(what) if w.startswith(o)) for o in order]
    assert positions == sorted(positions), what
    loop = result["closed_loop_s"]
    assert 0 < loop["drift_to_alarm"] < loop["drift_to_challenger"] < loop["drift_to_promoted"]

    settings = load_settings(out / "driftd.toml")
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        v2 = registry.get_version("fraud", 2)
        primary = v2.evaluation["primary"]  # type: ignore[index]
        assert primary["metric"] == "roc_auc" and primary["ci_low"] > 0  # beats it, with a CI
        assert registry.lineage("fraud@champion")["trigger"]["kind"] == "alarm"
        assert registry.get_version("fraud", 3).stage == "rolled_back"
        assert registry.traffic("fraud") == {2: 1.0}
        log = registry.audit_log(limit=100_000, subject="fraud/3")
        rollback = [r for r in log if r.action == "version.stage" and "rolled_back" in r.new]
        assert rollback and "latency" in rollback[0].reason, [r.reason for r in log]
        assert registry.verify_audit().ok
    finally:
        registry.engine.dispose()
    metrics = (out / "metrics.prom").read_text()
    assert 'driftd_rollbacks_total{model="fraud"} 1.0' in metrics
    assert 'driftd_canary_verdict{driftd_canary_verdict="rollback",model="fraud"} 1.0' in metrics
    res = CliRunner().invoke(
        cli, ["rollout", "status", "fraud", "--config", str(out / "driftd.toml"), "--json"]
    )
    assert res.exit_code == 4, res.output  # Exit.HALTED: the rollout was rolled back
    state = json.loads(res.stdout)
    assert state["phase"] == "rolled_back" and state["canary"] == 3 and state["pending"] is None
    assert state["verdict"]["decision"] == "rollback"
    assert any(r["slo"] == "latency_relative" and r["fired"] for r in state["verdict"]["reasons"])
    plan = state["verdict"]["plan"]  # said at the start: can a good canary promote in time?
    assert plan["reachable"] and "expected to promote" in plan["summary"], plan
