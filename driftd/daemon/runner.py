"""The loop: poll -> process -> dead-letter -> checkpoint, until asked to stop, and the
partitions a rebalance assigns and revokes.

The checkpoint steps and their order live in ``checkpointer``; the warnings about a full join
store in ``overflow``. Hooks (the labeled store, retrain triggers) never stop the loop: a
failing hook is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftd.config import PipelineSettings
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.abc import CheckpointStore, DeadLetterSink, Source
from driftd.daemon.checkpointer import Checkpointer
from driftd.daemon.overflow import OverflowWarnings
from driftd.daemon.pipeline import Pipeline

if TYPE_CHECKING:
    from driftd.daemon.labeled import LabeledSink
    from driftd.daemon.metrics.recorder import Recorder

log = logging.getLogger("driftd.runner")
MAX_ALARMS_KEPT = 1000


@dataclass(frozen=True)
class RunnerHooks:
    """Optional work the loop does besides monitoring: store joined rows, act on alarms
    (queue retrains), and a per-poll tick (cron schedules)."""

    labeled: LabeledSink | None = None
    on_alarm: Callable[[DriftDetected], object] | None = None
    tick: Callable[[], object] | None = None


class Runner:
    """Drives a Source through a Pipeline with checkpoints in a CheckpointStore."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: Source,
        sink: DeadLetterSink,
        store: CheckpointStore,
        settings: PipelineSettings,
        recorder: Recorder | None = None,
        clock: Callable[[], float] = time.monotonic,
        hooks: RunnerHooks | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.settings = settings
        self.recorder = recorder
        self.hooks = hooks or RunnerHooks()
        self.stop_event = threading.Event()
        self.alarms: deque[DriftDetected] = deque(maxlen=MAX_ALARMS_KEPT)  # the most recent
        self.checkpointer = Checkpointer(
            pipeline, source, sink, store, settings, recorder, self.hooks.labeled, clock
        )
        self.overflow = OverflowWarnings(pipeline.join, clock)

    @property
    def last_checkpoint_at(self) -> float | None:
        """Wall time of the oldest state this process holds, saved or restored (None: none)."""
        return self.checkpointer.last_at

    # -- partitions ----------------------------------------------------------------------
    def assign(self, partitions: Iterable[int]) -> None:
        """Restore each partition from its checkpoint (or start it empty) and seek to it."""
        for p in partitions:
            st = self.checkpointer.restore(p)
            self.sink.restore(st.offsets)
            self.source.seek(p, st.offsets)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Checkpoint the partitions, then forget them (another instance takes them)."""
        parts = [p for p in partitions if p in self.pipeline.partitions]
        if parts:
            self.checkpoint(parts)
        for p in parts:
            self.pipeline.drop(p)

    def checkpoint(self, partitions: Iterable[int] | None = None) -> None:
        """Save the given (default: all) partitions' state and offsets together."""
        self.checkpointer.save(partitions)

    # -- the loop ------------------------------------------------------------------------
    def step(self) -> int:
        """Poll once and process what came; return the number of events consumed."""
        chunks = self.source.poll(self.settings.poll_timeout_s, self.settings.batch_size)
        n = 0
        for chunk in chunks:
            t0 = time.perf_counter()
            out = self.pipeline.process(chunk)
            self.sink.write(out.dead_letters)
            if self.recorder:
                self.recorder.observe(time.perf_counter() - t0)
            self.overflow.note(out.join_deltas)
            if self.hooks.labeled is not None and out.labeled:
                self.hooks.labeled.write(out.labeled)
            for alarm in out.alarms:
                self.alarms.append(alarm)
                fields = dataclasses.asdict(alarm)
                fields["event_ts"] = fields.pop("ts")  # "ts" is the log line's own time
                log.info("drift detected", extra=fields)
                self._hook(self.hooks.on_alarm, alarm)
            n += out.consumed
        self._hook(self.hooks.tick)
        self.checkpointer.consumed(n)
        if self.checkpointer.due() and self.pipeline.partitions:
            self.checkpoint()
        return n

    @staticmethod
    def _hook(fn: Callable[..., object] | None, *args: object) -> None:
        """Call a hook; its failure is logged and never stops the loop."""
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            log.exception("hook failed", extra={"hook": getattr(fn, "__qualname__", str(fn))})

    def run(self, until_exhausted: Callable[[], bool] | None = None) -> None:
        """Loop until stop() (or until the source is exhausted), then checkpoint.

        An exception ends the loop without a checkpoint: it may have left a chunk half
        applied, and state that does not match its offsets must never be saved. The last
        checkpoint stays valid, so a restart replays from it.
        """
        while not self.stop_event.is_set():
            n = self.step()
            if n == 0 and until_exhausted is not None and until_exhausted():
                break
        if self.pipeline.partitions:
            self.checkpoint()

    def stop(self) -> None:
        """Ask the loop to finish its batch, checkpoint and return (signal-safe)."""
        self.stop_event.set()
