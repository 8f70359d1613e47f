"""``driftd run`` builds the daemon on one registry, opened once, whose approval gates are the
config's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import driftd.logs
from driftd.cli.main import cli
from driftd.daemon import app as app_mod
from driftd.registry import configure


def test_run_gives_the_registry_the_configs_gates_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    out = tmp_path / "demo"
    res = runner.invoke(cli, ["generate", "--out", str(out), "--events", "200"])
    assert res.exit_code == 0, res.output
    config = out / "driftd.toml"
    with config.open("a") as fh:
        fh.write('\n[registry.gates.production]\napprovals = 2\nrole = "admin"\n')

    opened: list[dict[str, Any]] = []
    real_open = configure.open_registry

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs)
        return real_open(*args, **kwargs)

    seen: dict[str, Any] = {}

    def fake_run(application: app_mod.App) -> None:  # the daemon itself is not under test
        seen["gates"] = application.model_registry.gates()

    monkeypatch.setattr(configure, "open_registry", counting_open)
    monkeypatch.setattr(app_mod, "run", fake_run)
    monkeypatch.setattr(driftd.logs, "configure", lambda settings: None)
    res = runner.invoke(cli, ["run", "--config", str(config)])

    assert res.exit_code == 0, res.output
    # The CLI's registry applies the config's gates; the leader's decisions registry (its own
    # fenced engine) reads them from the database and never writes them a second time.
    assert opened == [{"apply_gates": True}, {"apply_gates": False}]
    gates = {stage.value: (g.approvals, g.role.value) for stage, g in seen["gates"].items()}
    assert gates == {"production": (2, "admin")}
