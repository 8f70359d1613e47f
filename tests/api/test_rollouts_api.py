"""The rollout control endpoints: approver tokens only, 409 without a rollout in progress or
when the production gate refuses, and the same effect as the command line."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from driftd.registry import Registry
from driftd.registry.names import Stage
from driftd.registry.roles import Gate
from tests.api.conftest import Tokens
from tests.rollout.test_controller import (
    Traffic,
    _controller,
    _run,
    champion_and_challenger,
)


def _canary(reg: Registry, tmp_path: Path) -> None:
    config = champion_and_challenger(reg, tmp_path)
    traffic = Traffic(6)
    _run(_controller(reg, config, traffic), reg, traffic, {"1": 0.005, "2": 0.005}, 2)


def test_rollout_control_endpoints(
    registry: Registry, client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    _canary(registry, tmp_path)
    url = "/api/v1/models/fraud/rollout"

    def post(command: str, token: str, **body: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"}
        answer: httpx.Response = client.post(f"{url}/{command}", json=body, headers=auth)
        return answer

    assert post("pause", tokens.viewer).status_code == 403
    r = post("pause", tokens.approver, reason="looking")
    assert r.status_code == 200, r.text
    assert r.json()["paused"] is True and r.json()["actor"] == "ann"
    registry.set_gates({Stage.PRODUCTION: Gate(approvals=1)}, "root")
    r = post("promote", tokens.approver)
    assert r.status_code == 409 and r.json()["error"] == "GateNotSatisfied"
    r = post("abort", tokens.approver, reason="bad")
    assert r.status_code == 200 and r.json()["phase"] == "rolled_back"
    assert registry.traffic("fraud") == {1: 1.0}
    r = post("resume", tokens.approver)
    assert r.status_code == 409 and r.json()["error"] == "NoActiveRollout"
    assert post("nosuch", tokens.approver).status_code == 422
    assert registry.verify_audit().ok
