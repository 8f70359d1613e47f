"""Interfaces of the daemon's seams: sources, dead-letter sinks, monitors, checkpoint stores.

Each has an in-process implementation used by the embedded default and the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from driftd.daemon.columns import I32, PredictionColumns
from driftd.daemon.join import JoinedColumns
from driftd.events import DeadLetter

Stream = Literal["predictions", "labels", "mixed"]
Offsets = dict[str, int]


@dataclass(frozen=True, slots=True)
class RawChunk:
    """Consecutive raw events from one stream of one partition."""

    partition: int
    stream: Stream
    source: str  # topic or file path, for dead-letter positions
    raws: list[bytes]
    positions: Sequence[int]  # offset (Kafka) or line number (file) of each raw event
    resume: Offsets  # the offsets to record once this chunk is processed


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


class Source(Protocol):
    """Where raw events come from (Kafka topics, files)."""

    def poll(self, timeout_s: float, max_records: int) -> list[RawChunk]:
        """Return the next chunks, possibly none; never raises for bad event content.

        :raises SourceError: when the source itself fails (broker unreachable, file gone).
        """
        ...

    def seek(self, partition: int, offsets: Offsets) -> None:
        """Position the partition's streams at the given offsets (from a checkpoint)."""
        ...

    def commit(self, partition: int, offsets: Offsets) -> None:
        """Report offsets as processed (after the checkpoint that holds them)."""
        ...

    def lag(self) -> dict[str, int]:
        """Events not yet read, per stream."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class DeadLetterSink(Protocol):
    """Where rejected events go, with their reason."""

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Queue dead letters for delivery."""
        ...

    def flush(self) -> Offsets:
        """Make everything written durable; return the sink's offsets to checkpoint."""
        ...

    def restore(self, offsets: Offsets) -> None:
        """Drop anything written after a checkpoint's offsets, where the sink can."""
        ...

    def close(self) -> None:
        """Flush and release."""
        ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One partition's saved state and the offsets it reflects."""

    partition: int
    seq: int
    offsets: Offsets
    blob: bytes
    created_at: float


class CheckpointStore(Protocol):
    """Saves partition states and offsets together, atomically."""

    def save(self, pipeline: str, checkpoints: Sequence[Checkpoint]) -> None:
        """Save all given partitions in one transaction.

        :raises CheckpointError: nothing was saved.
        """
        ...

    def load(self, pipeline: str, partition: int) -> Checkpoint | None:
        """The latest checkpoint of a partition, or None."""
        ...

    def partitions(self, pipeline: str) -> list[int]:
        """Partitions that have a checkpoint."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
