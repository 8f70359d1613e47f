"""The built-in torch tabular trainer (``driftd.retrain.tabular:train``) and its predictor.

Training: AdamW, early stopping on validation loss (log loss; MSE for regression), the best
epoch's weights are kept.

Speed: each split is copied to the device once (pinned, non-blocking) when it fits, else it is
streamed in pinned chunks; each epoch shuffles with a seeded ``torch.randperm`` on the data's
device; batches are index gathers on the device; bf16 autocast and TF32 matmuls on CUDA; the
loss is accumulated on the device, so an epoch synchronises once.

The model (``TabularNet``) and its byte-stable artifact format are in
``driftd.retrain.tabular_model``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from driftd.retrain.evaluate import METRICS, metric_value
from driftd.retrain.provenance import file_sha256
from driftd.retrain.repro import deterministic_mode, seed_everything
from driftd.retrain.snapshot import TrainingArrays
from driftd.retrain.tabular_model import FORMAT, MAGIC, TabularNet, load_model, save_model
from driftd.retrain.trainer import (
    SplitTensors,
    TrainRequest,
    TrainResult,
    resolve_device,
    to_tensors,
)

__all__ = ["ARTIFACT_NAME", "DEFAULTS", "FORMAT", "MAGIC", "TabularNet", "align", "build_model"]
__all__ += ["load_model", "predict", "resolve_params", "save_model", "to_tensors", "train"]
__all__ += ["validation_metrics"]

ARTIFACT_NAME = "model.dtab"
DEFAULTS: Mapping[str, Any] = {
    "lr": 1e-3,
    "weight_decay": 0.0,
    "batch_size": None,  # None: 4096 on CPU, 65536 on CUDA
    "epochs": 10,
    "hidden": [256, 256],
    "dropout": 0.0,
    "patience": 3,  # epochs without a better validation loss; 0 disables early stopping
    "compile": False,
    "amp": True,  # bf16 autocast, CUDA only
    "eval_batch_size": 262_144,
    "resident_fraction": 0.5,  # keep a split on the GPU when it needs < this share of free memory
    "chunk_rows": 4_194_304,  # rows per pinned host chunk when it does not
}


def resolve_params(params: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown names are an error (typos would be silent)."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown tabular trainer params {unknown}; known: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    if p["batch_size"] is None:
        p["batch_size"] = 65_536 if device.type == "cuda" else 4096
    p["hidden"] = [int(h) for h in p["hidden"]]
    for key in ("batch_size", "epochs", "patience", "eval_batch_size", "chunk_rows"):
        p[key] = int(p[key])
    for key in ("lr", "weight_decay", "dropout", "resident_fraction"):
        p[key] = float(p[key])
    p["compile"], p["amp"] = bool(p["compile"]), bool(p["amp"])
    return p


def build_model(
    train: TrainingArrays, task: str, n_classes: int, params: Mapping[str, Any]
) -> TabularNet:
    """A fresh model whose standardisation buffers hold the train split's statistics."""
    config = {
        "format": FORMAT,
        "task": task,
        "numeric_names": list(train.numeric_names),
        "categorical_names": list(train.categorical_names),
        "vocabularies": [list(v) for v in train.vocabularies],
        "classes": list(range(n_classes)) if task == "multiclass" else None,
        "n_outputs": n_classes if task == "multiclass" else 1,
        "hidden": list(params["hidden"]),
        "dropout": float(params["dropout"]),
        "params": dict(params),
    }
    model = TabularNet(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        x = train.numeric.astype(np.float64)
        mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(x.shape[1])
        std = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    model.num_mean.copy_(torch.as_tensor(mean))
    model.num_std.copy_(torch.as_tensor(std))
    if task == "regression" and len(train.label):
        y = train.label.astype(np.float64)
        model.target_mean.fill_(float(y.mean()))
        model.target_std.fill_(float(y.std()) if y.std() > 0 else 1.0)
    return model


def _loss(task: str, model: TabularNet, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean training loss in float32 (regression on the standardised target)."""
    out = out.float()
    if task == "binary":
        return nn.functional.binary_cross_entropy_with_logits(out[:, 0], y)
    if task == "multiclass":
        return nn.functional.cross_entropy(out, y.long())
    return nn.functional.mse_loss(out[:, 0], (y - model.target_mean) / model.target_std)


def _transform(task: str, model: TabularNet, out: torch.Tensor) -> torch.Tensor:
    """Raw outputs -> P(class 1), class probabilities, or regression values."""
    out = out.float()
    if task == "binary":
        return torch.sigmoid(out[:, 0])
    if task == "multiclass":
        return torch.softmax(out, dim=1)
    return out[:, 0] * model.target_std + model.target_mean


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda" and amp:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def _predict_tensors(
    model: nn.Module,
    net: TabularNet,
    data: SplitTensors,
    device: torch.device,
    p: Mapping[str, Any],
) -> npt.NDArray[np.float64]:
    """Predictions for a whole split, in eval mode, in large batches."""
    was_training = net.training
    net.eval()
    outs = []
    for i in range(0, len(data), p["eval_batch_size"]):
        sl = slice(i, i + p["eval_batch_size"])
        xb, cb = (t[sl].to(device, non_blocking=True) for t in (data.numeric, data.categorical))
        with _autocast(device, p["amp"]):
            outs.append(_transform(net.config["task"], net, model(xb, cb)).cpu())
    net.train(was_training)
    if not outs:
        shape = (0, net.config["n_outputs"]) if net.config["task"] == "multiclass" else (0,)
        return np.empty(shape)
    return torch.cat(outs).double().numpy()


def validation_metrics(
    task: str, y: npt.NDArray[Any], pred: npt.NDArray[np.float64]
) -> dict[str, float]:
    """Every ``evaluate`` metric that applies (roc_auc only when both classes occur)."""
    out: dict[str, float] = {}
    for name, info in METRICS.items():
        if task in info.tasks and not (name == "roc_auc" and len(np.unique(y)) < 2) and len(y):
            out[name] = metric_value(name, task, y, pred)
    out["loss"] = out["rmse"] ** 2 if task == "regression" else out["log_loss"]
    return out


def _batches(
    data: SplitTensors, device: torch.device, bs: int, chunk: int, gen: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled batches: device-side gathers, or pinned host chunks copied non-blocking."""
    n = len(data)
    perm = torch.randperm(n, generator=gen, device=data.label.device)
    if data.label.device == device:
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            yield data.numeric[idx], data.categorical[idx], data.label[idx]
        return
    for c in range(0, n, chunk):
        idx = perm[c : c + chunk]
        parts = []
        for t in (data.numeric, data.categorical, data.label):
            buf = torch.empty((len(idx), *t.shape[1:]), dtype=t.dtype, pin_memory=True)
            parts.append(torch.index_select(t, 0, idx, out=buf).to(device, non_blocking=True))
        for i in range(0, len(idx), bs):
            yield parts[0][i : i + bs], parts[1][i : i + bs], parts[2][i : i + bs]


def _place(arrays: TrainingArrays, device: torch.device, fraction: float) -> SplitTensors:
    """The split on the device when it fits in ``fraction`` of free memory, else pinned host."""
    if device.type != "cuda":
        return to_tensors(arrays, device)
    need = arrays.numeric.nbytes + arrays.categorical.nbytes + arrays.label.nbytes
    free, _ = torch.cuda.mem_get_info(device)
    return to_tensors(arrays, device if need < fraction * free else torch.device("cpu"), pin=True)


def train(request: TrainRequest) -> TrainResult:
    """Train on the snapshot's train split, validate each epoch, write the best weights."""
    wall0 = time.perf_counter()
    device = resolve_device(request.device)
    p = resolve_params(request.params, device)
    snap = request.load()
    tr, va = snap.arrays("train"), snap.arrays("validation")
    if len(tr.label) == 0:
        raise ValueError(f"snapshot {request.snapshot_dir} has an empty train split")
    if len(va.label) == 0:
        va = tr  # nothing held out: validate on the train split rather than not at all
    n_classes = int(max(tr.label.max(), va.label.max())) + 1 if request.task == "multiclass" else 1
    precision = torch.get_float32_matmul_precision()
    with deterministic_mode(request.deterministic):
        try:
            if device.type == "cuda":
                torch.set_float32_matmul_precision("high")
            seed_everything(request.seed)
            net = build_model(tr, request.task, n_classes, p).to(device)
            best, history, reported = _fit(request, net, device, p, tr, va)
        finally:
            torch.set_float32_matmul_precision(precision)
    net.load_state_dict(best["state"])
    path = save_model(net, Path(request.out_dir) / ARTIFACT_NAME)
    rows = sum(h["rows"] for h in history)
    train_s = sum(h["seconds"] for h in history)
    wall_s = time.perf_counter() - wall0
    metrics = {
        **best["metrics"],
        "best_epoch": float(best["epoch"]),
        "epochs_run": float(len(history)),
    }
    metrics |= {"rows_per_s": rows / train_s, "rows_per_s_wall": rows / wall_s}
    metrics |= {"train_seconds": train_s, "wall_seconds": wall_s}
    speed = rows / train_s
    return TrainResult(
        path, file_sha256(path), metrics, len(history), str(device), speed, history=reported
    )


def _fit(
    request: TrainRequest,
    net: TabularNet,
    device: torch.device,
    p: Mapping[str, Any],
    tr: TrainingArrays,
    va: TrainingArrays,
) -> tuple[dict[str, Any], list[dict[str, float]], list[dict[str, float]]]:
    """The epoch loop; returns the best epoch (weights, metrics), per-epoch timings, and the
    metrics reported at each epoch (validation metrics, train loss, rows/s, seconds)."""
    train_t = _place(tr, device, p["resident_fraction"])
    val_t = _place(va, device, p["resident_fraction"])
    gen = torch.Generator(device=train_t.label.device)
    gen.manual_seed(request.seed)
    model: Any = torch.compile(net) if p["compile"] else net
    opt = torch.optim.AdamW(
        net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"], fused=device.type == "cuda"
    )
    best: dict[str, Any] = {"loss": math.inf}
    history: list[dict[str, float]] = []
    reported: list[dict[str, float]] = []
    stale = 0
    for epoch in range(1, p["epochs"] + 1):
        net.train()
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for xb, cb, yb in _batches(train_t, device, p["batch_size"], p["chunk_rows"], gen):
            with _autocast(device, p["amp"]):
                loss = _loss(request.task, net, model(xb, cb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += loss.detach() * yb.shape[0]
        train_loss = float(total) / len(train_t)  # one synchronisation per epoch
        seconds = time.perf_counter() - t0
        history.append({"rows": float(len(train_t)), "seconds": seconds})
        pred = _predict_tensors(model, net, val_t, device, p)
        metrics = validation_metrics(request.task, va.label, pred)
        metrics |= {"train_loss": train_loss, "rows_per_s": len(train_t) / seconds}
        request.report(epoch, dict(metrics))
        reported.append({**metrics, "epoch_seconds": seconds})
        if metrics["loss"] < best["loss"] or "state" not in best:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = {"loss": metrics["loss"], "epoch": epoch, "metrics": metrics, "state": state}
            stale = 0
        else:
            stale += 1
            if p["patience"] > 0 and stale >= p["patience"]:
                break
    best["metrics"] = {k: v for k, v in best["metrics"].items() if k != "rows_per_s"}
    return best, history, reported


def align(arrays: TrainingArrays, config: Mapping[str, Any]) -> TrainingArrays:
    """Re-express a split in the model's features: numeric by name (absent: NaN), categories
    by string through the model's vocabularies (unseen or absent: missing)."""
    n = len(arrays.label)
    numeric = np.full((n, len(config["numeric_names"])), np.nan, np.float32)
    pos = {name: j for j, name in enumerate(arrays.numeric_names)}
    for j, name in enumerate(config["numeric_names"]):
        if name in pos:
            numeric[:, j] = arrays.numeric[:, pos[name]]
    categorical = np.full((n, len(config["categorical_names"])), -1, np.int32)
    cpos = {name: j for j, name in enumerate(arrays.categorical_names)}
    for j, (name, vocab) in enumerate(
        zip(config["categorical_names"], config["vocabularies"], strict=True)
    ):
        if name in cpos:
            index = {s: i for i, s in enumerate(vocab)}
            theirs = arrays.vocabularies[cpos[name]]
            lut = np.array([index.get(s, -1) for s in theirs] + [-1], np.int32)
            codes = arrays.categorical[:, cpos[name]]
            categorical[:, j] = lut[
                np.where((codes >= 0) & (codes < len(theirs)), codes, len(theirs))
            ]
    return TrainingArrays(
        numeric,
        categorical,
        arrays.label,
        arrays.ts,
        list(config["numeric_names"]),
        list(config["categorical_names"]),
        [list(v) for v in config["vocabularies"]],
    )


def predict(
    model: TabularNet | Path | str, arrays: TrainingArrays, *, device: str = "cpu"
) -> npt.NDArray[np.float64]:
    """P(class 1) (binary, shape (n,)), class probabilities (multiclass, (n, C)) or values."""
    net = model if isinstance(model, TabularNet) else load_model(model)[0]
    dev = resolve_device(device)
    net = net.to(dev)
    p = {"eval_batch_size": DEFAULTS["eval_batch_size"], "amp": False}
    return _predict_tensors(net, net, to_tensors(align(arrays, net.config), dev), dev, p)
