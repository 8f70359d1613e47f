"""The built-in torch tabular trainer: it learns, reports, stops early, and its artifact loads."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from driftd.retrain import tabular
from driftd.retrain.evaluate import metric_value
from driftd.retrain.snapshot import Snapshot, SnapshotSpec, TimeRange, make_snapshot
from driftd.retrain.store import LabeledRows, LabeledStore
from driftd.retrain.trainer import TaskName, TrainRequest

T0 = 1_700_006_400.0
FAST = {"hidden": [64, 64], "batch_size": 256, "lr": 3e-3, "epochs": 6}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def make_rows(task: str, n: int = 3000, seed: int = 0) -> LabeledRows:
    """Rows whose label depends on two numeric features and one categorical one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    color = rng.integers(-1, 3, n).astype(np.int32)  # -1: missing
    size = rng.integers(0, 4, n).astype(np.int32)
    effect = np.array([1.5, -1.0, 0.0, 0.0])[color + 1]
    if task == "binary":
        logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] + effect
        label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    elif task == "multiclass":
        scores = np.stack([2 * x[:, 0], 2 * x[:, 1], 1.5 * (color == 0) + 0.5], axis=1)
        label = np.argmax(scores + rng.gumbel(size=(n, 3)) * 0.5, axis=1).astype(np.float64)
    else:
        label = 3.0 * x[:, 0] + x[:, 1] ** 2 + 2.0 * effect + 0.3 * rng.normal(size=n)
    x[rng.random(x.shape) < 0.03] = np.nan
    return LabeledRows(
        ids=[f"r{i:06d}" for i in range(n)],
        ts=T0 + np.arange(n, dtype=np.float64),
        label_ts=T0 + np.arange(n, dtype=np.float64) + 1,
        version=np.zeros(n, np.int32),
        version_names=["v1"],
        numeric=x,
        numeric_names=["a", "b", "c", "d", "e"],
        categorical=np.stack([color, size], axis=1),
        categorical_names=["color", "size"],
        categorical_vocabs=[["red", "green", "blue"], ["s", "m", "l", "xl"]],
        prediction=np.zeros(n),
        score=np.full(n, np.nan),
        label=label,
    )


def make_snap(tmp: Path, task: str = "binary", n: int = 3000, seed: int = 0) -> Snapshot:
    """A snapshot of ``make_rows`` in ``tmp / f"snap-{task}-{seed}"``."""
    store = LabeledStore(tmp / f"store-{task}-{seed}-{n}")
    store.append("m", make_rows(task, n, seed))
    store.flush()
    return make_snapshot(
        store, SnapshotSpec("m", TimeRange(0, 2e9)), tmp / f"snap-{task}-{seed}-{n}"
    )


def request(snap: Snapshot, out: Path, task: TaskName = "binary", **kw: Any) -> TrainRequest:
    """A CPU request on ``snap`` with the fast test params, overridable."""
    fields: dict[str, Any] = {
        "snapshot_dir": snap.path,
        "snapshot_sha256": snap.sha256,
        "task": task,
        "params": FAST,
        "seed": 7,
        "device": "cpu",
        "deterministic": True,
        "out_dir": out,
    }
    fields.update(kw)
    return TrainRequest(**fields)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_learns_clearly_better_than_a_trivial_baseline(tmp_path: Path, task: TaskName) -> None:
    snap = make_snap(tmp_path, task)
    result = tabular.train(request(snap, tmp_path / "out", task))
    assert result.artifact.exists() and result.epochs_run >= 1 and result.rows_per_s > 0
    assert result.metrics["rows_per_s"] > 0 and len(result.history) == result.epochs_run
    assert result.history[0]["rows_per_s"] > 0  # per-epoch values are a series, not names
    hold = snap.arrays("holdout")
    pred = tabular.predict(result.artifact, hold)
    y = hold.label
    if task == "binary":
        assert pred.shape == (len(y),) and pred.min() >= 0 and pred.max() <= 1
        assert metric_value("roc_auc", task, y, pred) > 0.8  # trivial: 0.5
        assert {"accuracy", "roc_auc", "log_loss", "brier"} <= result.metrics.keys()
    elif task == "multiclass":
        assert pred.shape == (len(y), 3)
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)
        majority = np.bincount(y.astype(int)).max() / len(y)
        assert metric_value("accuracy", task, y, pred) > majority + 0.2
    else:
        assert pred.shape == (len(y),) and np.isfinite(pred).all()
        assert metric_value("rmse", task, y, pred) < 0.5 * y.std()
        assert {"rmse", "mae"} <= result.metrics.keys()


def test_report_once_per_epoch_and_an_exception_stops_training(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    calls: list[tuple[int, dict[str, float]]] = []
    params = {**FAST, "epochs": 3, "patience": 0}
    tabular.train(
        request(snap, tmp_path / "a", params=params, report=lambda e, m: calls.append((e, m)))
    )
    assert [e for e, _ in calls] == [1, 2, 3]
    assert all({"loss", "roc_auc", "train_loss"} <= m.keys() for _, m in calls)

    class Pruned(Exception):
        pass

    seen: list[int] = []

    def prune(epoch: int, metrics: dict[str, float]) -> None:
        seen.append(epoch)
        if epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        tabular.train(request(snap, tmp_path / "b", params={**params, "epochs": 10}, report=prune))
    assert seen == [1, 2]
    assert not (tmp_path / "b" / tabular.ARTIFACT_NAME).exists()
    assert not torch.are_deterministic_algorithms_enabled()  # deterministic mode was undone


def test_early_stopping_stops_when_validation_loss_stalls(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    params = {**FAST, "lr": 0.0, "epochs": 20, "patience": 2}  # weights never change
    result = tabular.train(request(snap, tmp_path / "out", params=params))
    assert result.epochs_run == 3 and result.metrics["best_epoch"] == 1.0


def test_artifact_format_round_trip_and_feature_alignment(tmp_path: Path) -> None:
    snap = make_snap(tmp_path, n=1500)
    result = tabular.train(request(snap, tmp_path / "out", params={**FAST, "epochs": 2}))
    data = result.artifact.read_bytes()
    assert data.startswith(tabular.MAGIC)
    (size,) = struct.unpack_from("<Q", data, len(tabular.MAGIC))
    header = json.loads(data[len(tabular.MAGIC) + 8 : len(tabular.MAGIC) + 8 + size])
    names = [t["name"] for t in header["tensors"]]
    assert names == sorted(names) and header["config"]["task"] == "binary"
    assert header["config"]["vocabularies"] == [["blue", "green", "red"], ["l", "m", "s", "xl"]]
    net, config = tabular.load_model(result.artifact)
    assert config["hidden"] == [64, 64]
    assert [e.num_embeddings for e in net.embeddings] == [4, 5]  # vocab + 1 (missing)
    assert [e.embedding_dim for e in net.embeddings] == [3, 3]
    tabular.save_model(net, tmp_path / "again.dtab")
    assert (tmp_path / "again.dtab").read_bytes() == data
    hold = snap.arrays("holdout")
    base = tabular.predict(net, hold)
    np.testing.assert_array_equal(base, tabular.predict(result.artifact, hold))
    # The same rows under another vocabulary order and column order predict the same.
    perm = [2, 0, 1]  # new code i means old code perm[i]
    inverse = np.argsort(perm)
    cats = hold.categorical.copy()
    cats[:, 0] = np.where(cats[:, 0] >= 0, inverse[np.maximum(cats[:, 0], 0)], -1)
    shuffled = dataclasses.replace(
        hold,
        numeric=hold.numeric[:, ::-1].copy(),
        numeric_names=hold.numeric_names[::-1],
        categorical=cats,
        vocabularies=[[hold.vocabularies[0][i] for i in perm], hold.vocabularies[1]],
    )
    np.testing.assert_allclose(tabular.predict(net, shuffled), base, rtol=1e-6)
    missing = dataclasses.replace(hold, numeric=hold.numeric[:, :0], numeric_names=[])
    assert tabular.predict(net, missing).shape == base.shape


def test_unknown_params_and_bad_artifacts_are_errors(tmp_path: Path) -> None:
    snap = make_snap(tmp_path, n=500)
    with pytest.raises(ValueError, match="unknown tabular trainer params \\['lr_rate'\\]"):
        tabular.train(request(snap, tmp_path / "out", params={"lr_rate": 0.1}))
    (tmp_path / "x.dtab").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(ValueError, match="not a driftd-tabular/1 artifact"):
        tabular.load_model(tmp_path / "x.dtab")
    assert tabular.resolve_params({}, torch.device("cpu"))["batch_size"] == 4096
    assert tabular.resolve_params({}, torch.device("cuda"))["batch_size"] == 65_536


@needs_cuda
def test_gpu_training_with_amp_learns(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    params = {**FAST, "amp": True, "epochs": 8}
    result = tabular.train(
        request(snap, tmp_path / "out", device="cuda", params=params, deterministic=False)
    )
    assert result.device.startswith("cuda")
    hold = snap.arrays("holdout")
    assert (
        metric_value("roc_auc", "binary", hold.label, tabular.predict(result.artifact, hold)) > 0.8
    )


@needs_cuda
def test_gpu_deterministic_mode_reproduces_the_artifact_hash(tmp_path: Path) -> None:
    snap = make_snap(tmp_path)
    a = tabular.train(request(snap, tmp_path / "a", device="cuda"))
    b = tabular.train(request(snap, tmp_path / "b", device="cuda"))
    assert a.artifact_sha256 == b.artifact_sha256
