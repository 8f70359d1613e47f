"""The loop: poll -> process -> dead-letter -> checkpoint, until asked to stop.

Order of a checkpoint: flush the labeled event store and the dead-letter sink, snapshot the
partitions (state and the offsets of exactly the events that state reflects), save them in one
transaction, and only then commit offsets to the source. A crash anywhere in between replays
from the previous checkpoint, whose state matches its offsets, so nothing is lost and nothing
counted twice. Hooks (the labeled store, retrain triggers) never stop the loop: a failing hook
is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftd.config import PipelineSettings
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.abc import Checkpoint, CheckpointStore, DeadLetterSink, Source
from driftd.daemon.metrics import Recorder
from driftd.daemon.pipeline import Pipeline
from driftd.errors import CheckpointError

if TYPE_CHECKING:
    from driftd.daemon.labeled import LabeledSink

log = logging.getLogger("driftd.runner")
OVERFLOW_LOG_S = 30.0
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
        self.store = store
        self.settings = settings
        self.recorder = recorder
        self.clock = clock
        self.stop_event = threading.Event()
        self.last_checkpoint_at: float | None = None  # wall time, saved or restored: the age gauge
        self._since_events = 0
        self._since_t = clock()
        self._seq: dict[int, int] = {}
        self.alarms: deque[DriftDetected] = deque(maxlen=MAX_ALARMS_KEPT)  # the most recent
        self._overflow: Counter[str] = Counter()  # lost since the last warning, per model
        self._overflow_logged: dict[str, float] = {}
        self.hooks = hooks or RunnerHooks()

    # -- partitions ----------------------------------------------------------------------
    def assign(self, partitions: Iterable[int]) -> None:
        """Restore each partition from its checkpoint (or start it empty) and seek to it."""
        for p in partitions:
            cp = self.store.load(self.settings.name, p)
            if cp is None:
                st = self.pipeline.partition(p)
                self._seq[p] = 0
                log.info("partition started empty", extra={"partition": p})
            else:
                st = self.pipeline.restore(p, cp.blob)
                self._seq[p] = cp.seq
                # The age gauge counts from the oldest state this process holds, saved or not.
                if self.last_checkpoint_at is None or cp.created_at < self.last_checkpoint_at:
                    self.last_checkpoint_at = cp.created_at
                log.info(
                    "partition restored",
                    extra={"partition": p, "seq": cp.seq, "bytes": len(cp.blob)},
                )
            self.sink.restore(st.offsets)
            self.source.seek(p, st.offsets)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Checkpoint the partitions, then forget them (another instance takes them)."""
        parts = [p for p in partitions if p in self.pipeline.partitions]
        if parts:
            self.checkpoint(parts)
        for p in parts:
            self.pipeline.drop(p)

    # -- checkpoints ---------------------------------------------------------------------
    def checkpoint(self, partitions: Iterable[int] | None = None) -> None:
        """Save the given (default: all) partitions' state and offsets together."""
        parts = sorted(self.pipeline.partitions if partitions is None else partitions)
        if not parts:
            return
        t0 = time.perf_counter()
        if self.hooks.labeled is not None:
            self.hooks.labeled.flush()  # rows on disk before the offsets that cover them
        sink_offsets = self.sink.flush()
        cps = []
        now = time.time()
        for p in parts:
            st = self.pipeline.partition(p)
            st.offsets.update(sink_offsets)
            self._seq[p] = self._seq.get(p, 0) + 1
            cps.append(
                Checkpoint(p, self._seq[p], dict(st.offsets), self.pipeline.snapshot(p), now)
            )
        try:
            self.store.save(self.settings.name, cps)
        except CheckpointError:
            if self.recorder:
                self.recorder.checkpoint_failures.inc()
            raise
        for cp in cps:
            self.source.commit(cp.partition, cp.offsets)
        elapsed = time.perf_counter() - t0
        if self.recorder:
            self.recorder.checkpoint_seconds.observe(elapsed)
        self.last_checkpoint_at = now
        self._since_events = 0
        self._since_t = self.clock()
        log.debug("checkpoint saved", extra={"partitions": parts, "seconds": round(elapsed, 4)})

    def _due(self) -> bool:
        s = self.settings
        return (
            self._since_events >= s.checkpoint_every_events
            or self.clock() - self._since_t >= s.checkpoint_every_s
        )

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
                self.recorder.observe(out, time.perf_counter() - t0)
            self._note_overflow(out.join_deltas)
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
        self._since_events += n
        if self._due() and self.pipeline.partitions:
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

    def _note_overflow(self, deltas: dict[str, Counter[str]]) -> None:
        """Log a full join store (at most every OVERFLOW_LOG_S per model): data is lost."""
        for model, d in deltas.items():
            lost = d.get("evicted", 0) + d.get("dropped", 0)
            if not lost:
                continue
            self._overflow[model] += lost
            now = self.clock()
            if now - self._overflow_logged.get(model, -OVERFLOW_LOG_S) >= OVERFLOW_LOG_S:
                log.warning(
                    "join store full: predictions lost to the overflow policy",
                    extra={
                        "model": model,
                        "lost": self._overflow[model],
                        "policy": self.pipeline.join.overflow,
                        "max_pending": self.pipeline.join.max_pending,
                    },
                )
                self._overflow_logged[model] = now
                self._overflow[model] = 0

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
