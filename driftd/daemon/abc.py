"""Interfaces of the daemon's seams: sources, dead-letter sinks, monitors, checkpoint stores.

Each has an in-process implementation used by the embedded default and the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from driftd.contracts.events import DeadLetter

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
class Lag:
    """What a source has not read yet, in its own unit (read at scrape time).

    A Kafka source counts messages behind per (topic, partition) it is assigned; a file source
    counts the bytes left in the file it reads (``None``: unknown, e.g. gzip). Neither names a
    file: paths are not label values.
    """

    messages: Mapping[tuple[str, int], int] = field(default_factory=dict)
    remaining_bytes: int | None = None


class PartitionOwner(Protocol):
    """What a source calls when partitions are assigned or revoked (the Runner)."""

    def assign(self, partitions: Sequence[int]) -> None:
        """Restore and seek the partitions."""
        ...

    def revoke(self, partitions: Sequence[int]) -> None:
        """Checkpoint and forget the partitions."""
        ...


class Source(Protocol):
    """Where raw events come from (Kafka topics, files)."""

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a file replay) has nothing more to give."""
        ...

    def bind(self, owner: PartitionOwner) -> None:
        """Start delivering partitions: call ``owner.assign`` / ``owner.revoke`` as they come
        and go (a consumer group's rebalances; a file source assigns its one partition)."""
        ...

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

    def lag(self) -> Lag:
        """What is not read yet: messages per topic partition, or bytes left in a file."""
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
class Report:
    """What one partition tells the leader with one checkpoint: its summaries since the
    previous checkpoint (``daemon.summaries``), the event time below which it expects no more
    events (its watermark), and when it last consumed an event (wall time, for idleness)."""

    partition: int
    seq: int
    watermark: float
    active_at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One partition's saved state and the offsets it reflects, and its report to the leader
    (saved in the same transaction, so a crash neither loses nor doubles one)."""

    partition: int
    seq: int
    offsets: Offsets
    blob: bytes
    created_at: float
    report: Report | None = None


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

    def reports(self, pipeline: str) -> list[Report]:
        """The partitions' reports not yet merged by a leader, in (partition, seq) order."""
        ...

    def load_leader(self, pipeline: str) -> bytes | None:
        """The leader's saved state, or None."""
        ...

    def save_leader(
        self,
        pipeline: str,
        blob: bytes,
        merged: Mapping[int, int],
        fence: Callable[[Any], int] | None = None,
    ) -> None:
        """Save the leader's state and forget the reports it merged (``partition -> last
        seq``), in one transaction that first calls ``fence(connection)``, which raises when
        this leader's lease has been taken over (so a deposed leader saves nothing).

        :raises CheckpointError: nothing was saved.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
