"""What monitors consume and raise: a model's batch, and the alarm a detector fires."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from driftd.contracts.columns import F64, I32, JoinedColumns, PredictionColumns


@dataclass(frozen=True, slots=True)
class MonitorBatch:
    """What a monitor sees of one model in one processed batch."""

    model: str
    versions: Sequence[str]  # names of the version codes
    predictions: PredictionColumns  # new predictions, duplicates removed
    joined: JoinedColumns | None  # predictions that received their label
    expired_versions: I32  # versions of predictions that expired without a label
    numeric_names: Sequence[str] = field(default=())
    categorical_names: Sequence[str] = field(default=())
    # each categorical feature's stable category keys by code (``Vocab.keys``), and strings
    categorical_keys: Sequence[F64] = field(default=())
    categorical_values: Sequence[Sequence[str]] = field(default=())
    # each prediction's segment label ("region=eu"; "" without one), when segments are on
    segments: Sequence[str] = field(default=())
    # a multiclass model's declared classes (the columns of ``scores``), and the stable key
    # (CRC-32 of the name) of each target class code, for predictions and labels alike
    class_names: Sequence[str] = field(default=())
    target_keys: F64 = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True, slots=True)
class DriftDetected:
    """A streaming detector fired for a model version."""

    model: str
    version: str
    stream: str
    detector: str
    kind: str  # "drift" or "warning"
    ts: float  # event time of the value that fired it
    statistic: float
    threshold: float
    reference: str = ""  # what a window check compared against ("" for sequential detectors)


class Monitor(Protocol):
    """A per-model consumer of batches; pure: no I/O, no clock."""

    def update(self, batch: MonitorBatch) -> Sequence[DriftDetected]:
        """Consume a batch; return what fired (empty when nothing did)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Plain data and arrays that load_state_dict() restores."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state produced by state_dict()."""
        ...


MonitorFactory = Callable[[str], Monitor]
