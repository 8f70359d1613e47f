"""``driftd api serve`` as a real process: token auth over HTTP, gates applied from the config."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from driftd.cli.main import cli
from tests.integration.conftest import free_port


def test_api_serve_answers_with_roles(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/reg.db"
    config = tmp_path / "driftd.toml"
    config.write_text(
        f"""
[models.fraud]
features = {{ amount = "numeric" }}
[registry]
url = "{db}"
[registry.gates.production]
approvals = 2
"""
    )
    runner = CliRunner()
    res = runner.invoke(
        cli, ["token", "create", "--name", "viewer-bot", "--role", "viewer", "--db", db]
    )
    assert res.exit_code == 0, res.output
    token = res.stdout.splitlines()[0]
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftd.cli",
            "api",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "api did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/api/v1/models").status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v1/models", headers=auth).json()["items"] == []
        write = httpx.post(f"{base}/api/v1/models/fraud/versions", headers=auth, json={})
        assert write.status_code == 403
        assert "openapi" in httpx.get(f"{base}/openapi.json").json()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    res = runner.invoke(cli, ["audit", "log", "--json", "--db", db])
    actions = [r["action"] for r in json.loads(res.stdout)]
    assert "gates.set" in actions  # the config's gates were applied at start-up
