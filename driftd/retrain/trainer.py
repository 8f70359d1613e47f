"""The trainer interface: what a training entry point receives and returns, and how it is found.

A trainer is any callable ``train(request: TrainRequest) -> TrainResult`` named by a
``"package.module:function"`` entry point (``function`` may be a dotted attribute path). It gets
the snapshot (its directory and dataset hash, with ``load()``/``arrays()``/``tensors()`` helpers
for Arrow, numpy and torch access), hyperparameters, seed, device and the deterministic flag;
it writes one artifact file under ``out_dir`` and returns its path, SHA-256 and metrics. The
built-in torch tabular trainer is ``driftd.retrain.tabular:train`` (``BUILTIN``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from driftd.errors import DriftdError
from driftd.retrain.snapshot import Snapshot, Split, TrainingArrays, load_snapshot

__all__ = [
    "BUILTIN",
    "EntryPointError",
    "ReportFn",
    "SplitTensors",
    "TaskName",
    "TrainRequest",
    "TrainResult",
    "Trainer",
    "load_entry_point",
    "resolve_device",
    "to_tensors",
]

BUILTIN = "driftd.retrain.tabular:train"
TaskName = Literal["binary", "multiclass", "regression"]
TASKS: tuple[TaskName, ...] = ("binary", "multiclass", "regression")
ReportFn = Callable[[int, dict[str, float]], None]


class EntryPointError(DriftdError):
    """A trainer entry point is malformed, cannot be imported, or does not name a callable."""


def _no_report(epoch: int, metrics: dict[str, float]) -> None:
    """The default per-epoch report: ignore it."""


@dataclass(frozen=True)
class TrainRequest:
    """Everything a trainer needs; with the entry point it is all a rerun has to record.

    ``report(epoch, metrics)`` is called once per epoch with validation metrics (1-based
    epochs); an exception raised from it (e.g. ``optuna.TrialPruned``) aborts training and
    propagates to the caller, and no artifact is written.
    """

    snapshot_dir: Path
    snapshot_sha256: str
    task: TaskName
    params: Mapping[str, Any]
    seed: int
    device: str
    deterministic: bool
    out_dir: Path
    report: ReportFn = field(default=_no_report, compare=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is invalid; valid: {list(TASKS)}")

    def load(self, *, verify: bool = True) -> Snapshot:
        """Open the snapshot; raise if its dataset hash is not the one requested."""
        snap = load_snapshot(self.snapshot_dir, verify=verify)
        if snap.sha256 != self.snapshot_sha256:
            raise ValueError(
                f"snapshot {self.snapshot_dir} has dataset sha256 {snap.sha256}, "
                f"the request expects {self.snapshot_sha256}"
            )
        return snap

    def arrays(self, split: Split, snapshot: Snapshot | None = None) -> TrainingArrays:
        """One split as numpy arrays (see ``Snapshot.arrays``)."""
        return (snapshot or self.load()).arrays(split)


@dataclass(frozen=True)
class TrainResult:
    """What a trainer returns: one artifact file, its hash, and flat numeric metrics (final
    numbers); ``history`` holds the metrics reported at each epoch (epoch 1 first), which the
    registry stores as the run's step-wise series."""

    artifact: Path
    artifact_sha256: str
    metrics: dict[str, float]
    epochs_run: int
    device: str
    rows_per_s: float
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer(Protocol):
    """A training entry point."""

    def __call__(self, request: TrainRequest, /) -> TrainResult: ...


@dataclass(frozen=True)
class SplitTensors:
    """One split as torch tensors on a device.

    ``numeric`` float32 (NaN when missing); ``categorical`` int32 embedding indices (code + 1,
    0 for missing or unknown); ``label`` float32.
    """

    numeric: torch.Tensor
    categorical: torch.Tensor
    label: torch.Tensor

    def __len__(self) -> int:
        return int(self.label.shape[0])


def embedding_indices(arrays: TrainingArrays) -> np.ndarray[Any, np.dtype[np.int32]]:
    """Categorical codes shifted by one so that index 0 means missing or out of vocabulary."""
    codes = arrays.categorical
    sizes = np.array([len(v) for v in arrays.vocabularies], np.int32)
    ok = (codes >= 0) & (codes < sizes[None, :])
    return np.where(ok, codes + 1, 0).astype(np.int32)


def to_tensors(arrays: TrainingArrays, device: torch.device, *, pin: bool = False) -> SplitTensors:
    """Copy a split to ``device`` once (pinned, non-blocking host-to-GPU copies on CUDA)."""

    def move(a: np.ndarray[Any, Any]) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        if device.type == "cuda":
            return t.pin_memory().to(device, non_blocking=True)
        return t.pin_memory() if pin and torch.cuda.is_available() else t

    return SplitTensors(
        numeric=move(arrays.numeric.astype(np.float32, copy=False)),
        categorical=move(embedding_indices(arrays)),
        label=move(arrays.label.astype(np.float32, copy=False)),
    )


def resolve_device(device: str) -> torch.device:
    """``"auto"`` means CUDA when available, else CPU; an unavailable CUDA device is an error.

    A CUDA device always carries its index (``cuda`` becomes ``cuda:0``), because tensors report
    theirs and ``torch.device("cuda") != torch.device("cuda:0")``.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available")
    return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())


def load_entry_point(spec: str) -> Trainer:
    """Resolve ``"package.module:function"`` to a callable trainer, with errors that say why."""
    trainer: Trainer = load_callable(
        spec, "expected 'package.module:function' naming a callable train(request) -> result"
    )
    return trainer


def load_callable(spec: str, expected: str, what: str = "trainer") -> Any:
    """Resolve ``"package.module:attr.path"`` to a callable; EntryPointError says why not."""
    mod_name, sep, attr_path = spec.partition(":")
    if not sep or not mod_name.strip() or not attr_path.strip() or ":" in attr_path:
        raise EntryPointError(f"{what} entry point {spec!r} is malformed; {expected}")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (e.name == mod_name or mod_name.startswith(e.name + ".")):
            raise EntryPointError(
                f"{what} entry point {spec!r}: module {mod_name!r} not found; {expected}"
            ) from e
        raise EntryPointError(
            f"{what} entry point {spec!r}: importing module {mod_name!r} failed because "
            f"it imports the missing module {e.name!r}"
        ) from e
    except Exception as e:
        raise EntryPointError(
            f"{what} entry point {spec!r}: importing module {mod_name!r} raised "
            f"{type(e).__name__}: {e}"
        ) from e
    for i, part in enumerate(attr_path.split(".")):
        if not hasattr(obj, part):
            where = ".".join([mod_name, *attr_path.split(".")[:i]])
            raise EntryPointError(
                f"{what} entry point {spec!r}: {where!r} has no attribute {part!r}; {expected}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise EntryPointError(
            f"{what} entry point {spec!r} names a {type(obj).__name__}, not a callable; {expected}"
        )
    return obj
