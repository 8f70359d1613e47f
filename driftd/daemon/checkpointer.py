"""Checkpoints of the pipeline's partitions: state and offsets saved together, in order.

The steps of a checkpoint, in this order:

1. flush the labeled event store, so its rows are on disk before the offsets that cover them;
2. flush the dead-letter sink and add its offsets to each partition's offsets;
3. snapshot each partition (its state and the offsets of exactly the events that state
   reflects) under the partition's next sequence number, with its report to the leader (the
   summaries buffered since the last checkpoint, its watermark, when it last consumed);
4. save every snapshot and report in one transaction (a failure is counted and raised:
   nothing after it runs, so no offset is committed past the saved state);
5. clear the reported buffers, and commit each partition's offsets to the source;
6. record the checkpoint's duration and wall time (the age gauge) and start the count of
   events and seconds towards the next one over.

A crash anywhere in between replays from the previous checkpoint, whose state matches its
offsets, so nothing is lost and nothing counted twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from driftd.config import PipelineSettings
from driftd.daemon.abc import (
    Checkpoint,
    CheckpointStore,
    DeadLetterSink,
    Offsets,
    Report,
    Source,
)
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.state import PartitionState
from driftd.errors import CheckpointError, PartitionLost

if TYPE_CHECKING:
    from driftd.daemon.labeled import LabeledSink
    from driftd.daemon.metrics.recorder import Recorder

# The runner's logger, as before the checkpoint steps moved here: log filters key on it.
log = logging.getLogger("driftd.runner")


class Checkpointer:
    """Restores partitions from, and saves them to, a CheckpointStore; says when one is due."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: Source,
        sink: DeadLetterSink,
        store: CheckpointStore,
        settings: PipelineSettings,
        recorder: Recorder | None = None,
        labeled: LabeledSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.store = store
        self.settings = settings
        self.recorder = recorder
        self.labeled = labeled
        self.clock = clock
        self.last_at: float | None = None  # wall time, saved or restored: the age gauge
        self._seq: dict[int, int] = {}
        self._active: dict[int, tuple[int, float]] = {}  # consumed, and when it last grew
        self._since_events = 0
        self._since_t = clock()

    def restore(self, p: int) -> PartitionState:
        """Partition p's state from its checkpoint, or empty when it has none."""
        cp = self.store.load(self.settings.name, p)
        if cp is None:
            st = self.pipeline.partition(p)
            self._seq[p] = 0
            log.info("partition started empty", extra={"partition": p})
            return st
        st = self.pipeline.restore(p, cp.blob)
        self._seq[p] = cp.seq
        # Events consumed before the restore count as activity at the checkpoint's time; a
        # partition that never had one stays idle (it holds no watermark back).
        self._active[p] = (st.consumed, cp.created_at if st.consumed else -math.inf)
        # The age gauge counts from the oldest state this process holds, saved or not.
        if self.last_at is None or cp.created_at < self.last_at:
            self.last_at = cp.created_at
        log.info(
            "partition restored",
            extra={"partition": p, "seq": cp.seq, "bytes": len(cp.blob)},
        )
        return st

    def save(self, partitions: Iterable[int] | None = None) -> None:
        """Checkpoint the given (default: all held) partitions, in the steps listed above."""
        parts = sorted(self.pipeline.partitions if partitions is None else partitions)
        if not parts:
            return
        t0 = time.perf_counter()
        if self.labeled is not None:
            self.labeled.flush()
        sink_offsets = self.sink.flush()
        now = time.time()
        cps = [self._snapshot(p, sink_offsets, now) for p in parts]
        try:
            self.store.save(self.settings.name, cps)
        except PartitionLost as exc:
            # A rebalance this instance has not heard of yet: another owner holds them now.
            # Their stale state is dropped (the owner replays from its own checkpoint) and the
            # other partitions are saved without them.
            log.warning(
                "partitions lost to another owner; dropped", extra={"partitions": exc.partitions}
            )
            for p in exc.partitions:
                self.pipeline.drop(p)
                self._seq.pop(p, None)
            rest = [p for p in parts if p not in exc.partitions]
            if rest:
                self.save(rest)
            return
        except CheckpointError:
            if self.recorder:
                self.recorder.checkpoint_failures.inc()
            raise
        for cp in cps:
            self._seq[cp.partition] = cp.seq
        for p in parts:
            self.pipeline.partition(p).clear_report()
        for cp in cps:
            self.source.commit(cp.partition, cp.offsets)
        elapsed = time.perf_counter() - t0
        if self.recorder:
            self.recorder.checkpoint_seconds.observe(elapsed)
        self.last_at = now
        self._since_events = 0
        self._since_t = self.clock()
        log.debug("checkpoint saved", extra={"partitions": parts, "seconds": round(elapsed, 4)})

    def _snapshot(self, p: int, sink_offsets: Offsets, now: float) -> Checkpoint:
        st = self.pipeline.partition(p)
        st.offsets.update(sink_offsets)
        seq = self._seq.get(p, 0) + 1  # kept once the save succeeds
        consumed, active_at = self._active.get(p, (0, -math.inf))
        if st.consumed != consumed:
            consumed, active_at = st.consumed, now
            self._active[p] = (consumed, active_at)
        watermark = st.watermark(self.pipeline.leader.lateness_s)
        report = Report(p, seq, watermark, active_at, st.report_data())
        return Checkpoint(p, seq, dict(st.offsets), self.pipeline.snapshot(p), now, report)

    def consumed(self, n: int) -> None:
        """Count events processed since the last checkpoint."""
        self._since_events += n

    def due(self) -> bool:
        """True when enough events or seconds have passed since the last checkpoint."""
        s = self.settings
        return (
            self._since_events >= s.checkpoint_every_events
            or self.clock() - self._since_t >= s.checkpoint_every_s
        )
