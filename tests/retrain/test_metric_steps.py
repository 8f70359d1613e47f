"""A real (small) retrain stores its per-epoch metrics as step series, not as flattened names,
keeps its final metrics as before, and applies artifact retention when it finishes."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.config import load_settings
from driftd.registry.configure import open_registry
from driftd.registry.run_retention import DELETED
from driftd.retrain.store import LabeledStore
from tests.retrain.test_service import setup, write_rows  # noqa: F401 - the fixture

W = np.array([1.0, -1.0, 0.5, 0.0, 0.0, 0.0])


def _retrain(config: Path) -> dict[str, object]:
    res = CliRunner().invoke(cli, ["retrain", "fraud", "--config", str(config), "--json"])
    assert res.exit_code in (0, 3), res.output  # 3: refused, registered all the same
    return dict(json.loads(res.stdout))


def test_epochs_are_stored_as_steps(setup: tuple[Path, LabeledStore]) -> None:  # noqa: F811
    config, store = setup
    write_rows(store, 6000, seed=1, t0=0.0, weights=W)
    out = _retrain(config)
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        run = registry.get_run(str(out["run_id"]))
        series = registry.metric_series([run.id])[run.id]
    finally:
        registry.engine.dispose()
    epochs = int(run.metrics["epochs_run"])
    assert not [k for k in run.metrics if "_epoch_" in k]  # no flattened per-epoch names
    assert {"loss", "roc_auc", "train_loss", "rows_per_s", "epoch_seconds"} <= set(series)
    for key, points in series.items():
        assert [p.step for p in points] == list(range(1, epochs + 1)), key
    best = int(run.metrics["best_epoch"])
    assert series["loss"][best - 1].value == run.metrics["loss"]  # the final = the best epoch's
    assert all(p.value is not None and p.value > 0 for p in series["rows_per_s"])
    assert run.metrics["rows_per_s"] > 0 and "wall_seconds" in run.metrics


def test_a_retrain_keeps_only_the_best_runs_artifacts(setup: tuple[Path, LabeledStore]) -> None:  # noqa: F811
    config, store = setup
    # The first candidate becomes the champion (production: protected); every later one is
    # refused (an impossible gain) and stays in development, unprotected.
    text = config.read_text().replace("min_samples = 200", "min_gain = 0.9\nmin_samples = 200")
    config.write_text(
        text.replace("deterministic = true", "deterministic = true\nkeep_best_artifacts = 1")
    )
    outcomes = []
    for i in range(3):
        write_rows(store, 6000, seed=10 + i, t0=10_000.0 * i, weights=W)
        outcomes.append(_retrain(config))
        if i == 0:  # the champion, in production: protected; later candidates face it
            settings = load_settings(config)
            reg = open_registry(settings.registry, settings.registry_url, apply_gates=False)
            reg.promote("fraud", 1, "production", "ops")
            reg.engine.dispose()
    assert [o["promoted"] for o in outcomes] == [True, False, False]
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        runs = [registry.get_run(str(o["run_id"])) for o in outcomes]
    finally:
        registry.engine.dispose()
    dirs = [Path(urlparse(str(r.tags["artifact_dir"])).path) for r in runs]
    best = max(range(3), key=lambda i: runs[i].metrics["roc_auc"])
    kept = {0, best}  # the protected first one, and the best
    for i, (run, out) in enumerate(zip(runs, dirs, strict=True)):
        assert out.exists() is (i in kept), i
        assert (run.tags.get("artifacts") == DELETED) is (i not in kept), i
        assert run.metrics["roc_auc"] > 0 and run.params  # metadata stays
