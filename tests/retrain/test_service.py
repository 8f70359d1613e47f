"""One retrain end to end through the CLI: snapshot → run → train → evaluate → register, then
``reproduce`` from the registry's metadata alone (and what it says when the data changed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.config import load_settings
from driftd.registry.configure import open_registry
from driftd.retrain.store import LabeledRows, LabeledStore

N_FEATURES = 6


def write_rows(store: LabeledStore, n: int, seed: int, t0: float, weights: np.ndarray) -> None:
    """``n`` labeled rows whose label follows a logistic model with ``weights``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    p = 1 / (1 + np.exp(-(x @ weights)))
    y = (rng.random(n) < p).astype(np.float64)
    ts = t0 + np.arange(n, dtype=np.float64)
    store.append(
        "fraud",
        LabeledRows(
            ids=[f"{seed}-{i}" for i in range(n)],
            ts=ts,
            label_ts=ts + 1,
            version=np.zeros(n, np.int32),
            version_names=["v1"],
            numeric=x,
            numeric_names=[f"f{j}" for j in range(N_FEATURES)],
            categorical=np.zeros((n, 0), np.int32),
            categorical_names=[],
            categorical_vocabs=[],
            prediction=np.zeros(n),
            score=np.full(n, np.nan),
            label=y,
        ),
    )
    store.flush()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, LabeledStore]:
    config = tmp_path / "driftd.toml"
    features = ", ".join(f'f{j} = "numeric"' for j in range(N_FEATURES))
    config.write_text(
        f"""
[checkpoint]
url = "sqlite:///{tmp_path}/state.db"
[retrain]
store_dir = "{tmp_path}/labeled"
work_dir = "{tmp_path}/work"
[models.fraud]
features = {{ {features} }}
[models.fraud.retrain]
params = {{ epochs = 4, batch_size = 512, hidden = [32, 32] }}
window_last_rows = 6000
deterministic = true
device = "cpu"
[models.fraud.retrain.gate]
min_samples = 200
n_boot = 500
"""
    )
    return config, LabeledStore(tmp_path / "labeled")


def _retrain(config: Path, code: int = 0) -> dict[str, object]:
    res = CliRunner().invoke(cli, ["retrain", "fraud", "--config", str(config), "--json"])
    assert res.exit_code == code, res.output
    return dict(json.loads(res.stdout))


def test_retrain_registers_evaluates_and_reproduces(setup: tuple[Path, LabeledStore]) -> None:
    config, store = setup
    w_old = np.array([2.0, -1.5, 1.0, 0.0, 0.0, 0.0])
    write_rows(store, 6000, seed=1, t0=0.0, weights=w_old)
    first = _retrain(config)
    assert first["version"] == 1 and first["promoted"] is True  # no champion yet
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    registry.promote("fraud", 1, "production", "ops")

    # The concept drifts: the champion's weights are now wrong; a retrain on the new data wins.
    w_new = np.array([-2.0, 0.0, 1.0, 1.5, 0.0, -1.0])
    write_rows(store, 6000, seed=2, t0=10_000.0, weights=w_new)
    second = _retrain(config)
    ev = second["evaluation"]
    assert second["promoted"] is True, ev
    assert ev["primary"]["metric"] == "roc_auc" and ev["primary"]["lower_bound"] > 0  # type: ignore[index]
    v2 = registry.get_version("fraud", 2)
    assert v2.stage == "staging" and v2.aliases == ["challenger"] and v2.parent_version == 1
    assert v2.evaluation is not None and v2.evaluation["n"] == ev["n"]  # type: ignore[index]

    tree = registry.lineage("fraud@challenger")
    assert tree["run"]["tags"]["entry_point"] == "driftd.retrain.tabular:train"
    assert tree["dataset"]["sha256"] == second["dataset_sha256"]
    assert tree["parent"]["uri"] == "models:/fraud/1"
    run_id = str(second["run_id"])
    registry.engine.dispose()

    res = CliRunner().invoke(cli, ["retrain", "reproduce", run_id, "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("reproduced")

    # Change one value of the snapshot's training data: reproduce names the dataset.
    import pyarrow.parquet as pq

    snap_dir = Path(tree["dataset"]["uri"].removeprefix("file://"))
    table = pq.read_table(snap_dir / "train.parquet")
    col = table.column("num.f0").to_numpy().copy()
    col[0] += 1.0
    changed = table.set_column(table.column_names.index("num.f0"), "num.f0", [col])
    pq.write_table(changed, snap_dir / "train.parquet")
    res = CliRunner().invoke(cli, ["retrain", "reproduce", run_id, "--config", str(config)])
    assert res.exit_code != 0
    assert res.output.startswith("NOT reproduced\ndataset changed")
    assert "split 'train'" in res.output


def test_an_equal_candidate_is_refused(setup: tuple[Path, LabeledStore]) -> None:
    """New rows of the same concept: a model trained on them is no better by the required
    practical margin (min_gain = 0.01 AUC), so it is refused and stays in development."""
    config, store = setup
    config.write_text(
        config.read_text().replace("min_samples = 200", "min_gain = 0.01\nmin_samples = 200")
    )
    w = np.array([1.0, -1.0, 0.5, 0.0, 0.0, 0.0])
    write_rows(store, 6000, seed=3, t0=0.0, weights=w)
    _retrain(config)
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    registry.promote("fraud", 1, "production", "ops")
    registry.engine.dispose()
    write_rows(store, 6000, seed=4, t0=10_000.0, weights=w)  # same concept, new rows
    second = _retrain(config, code=3)  # refused: exit 3 (Exit.REFUSED)
    assert second["promoted"] is False
    assert second["evaluation"]["reasons"]  # type: ignore[index]
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    v2 = registry.get_version("fraud", 2)
    assert v2.stage == "development" and "challenger" not in v2.aliases
    registry.engine.dispose()


def test_window_errors_are_clear(setup: tuple[Path, LabeledStore]) -> None:
    config, _ = setup
    res = CliRunner().invoke(cli, ["retrain", "fraud", "--config", str(config), "--window", "x:1"])
    assert res.exit_code != 0 and "expected rows:N" in res.output
    res = CliRunner().invoke(cli, ["retrain", "nope", "--config", str(config)])
    assert res.exit_code != 0 and "model 'nope' is not configured" in res.output
