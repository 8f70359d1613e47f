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
from driftd.daemon.brain import Brain
from driftd.daemon.checkpointer import Checkpointer
from driftd.daemon.leader import Leader
from driftd.daemon.overflow import OverflowWarnings
from driftd.daemon.pipeline import Pipeline

if TYPE_CHECKING:
    from driftd.daemon.labeled import LabeledSink
    from driftd.daemon.metrics.recorder import Recorder

log = logging.getLogger("driftd.runner")
MAX_ALARMS_KEPT = 1000
LIVENESS_S = 120.0  # a poll that has not returned for this long (plus its timeout): stuck


@dataclass(frozen=True)
class RunnerHooks:
    """Optional work the loop does besides monitoring: store joined rows, act on alarms
    (queue retrains), and a per-poll tick (cron schedules)."""

    labeled: LabeledSink | None = None
    on_alarm: Callable[[DriftDetected], object] | None = None
    tick: Callable[[], object] | None = None
    # labeled rows of a model in the leader's merged stream (the retrain policy counts them)
    on_labeled: Callable[[str, int], object] | None = None


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
        leader: Leader | None = None,
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
        self._steps = 0
        self.failed = False  # the loop ended on an exception
        self._last_step = time.monotonic()
        self._restoring = False
        # The decisions: the leader's merge of every partition (a local one by default).
        self.leader = leader or Leader(
            lambda: Brain(pipeline.schemas_settings(), pipeline.leader),
            store,
            settings.name,
            pipeline.leader,
        )
        if self.leader.on_alarms is None:
            self.leader.on_alarms = self._alarmed
        if self.leader.on_labeled is None:
            self.leader.on_labeled = self.hooks.on_labeled

    # -- probes (read from the metrics server's threads) ------------------------------------
    def not_ready(self) -> str | None:
        """None once the loop has turned with what it was assigned restored; else why not."""
        if self._steps == 0:
            return "not started: restoring the checkpoint and joining the consumer group"
        if self._restoring:
            return "restoring assigned partitions"
        return None

    def not_alive(self) -> str | None:
        """None while the loop turns (a poll finished within ``LIVENESS_S``); else why not."""
        if self._steps == 0 or self.stop_event.is_set():
            return None  # starting (readiness covers it) or stopping on request
        stuck = time.monotonic() - self._last_step
        if stuck > LIVENESS_S + self.settings.poll_timeout_s:
            return f"the loop has not finished a poll for {stuck:.0f} s"
        return None

    @property
    def last_checkpoint_at(self) -> float | None:
        """Wall time of the oldest state this process holds, saved or restored (None: none)."""
        return self.checkpointer.last_at

    # -- partitions ----------------------------------------------------------------------
    def assign(self, partitions: Iterable[int]) -> None:
        """Restore each partition from its checkpoint (or start it empty) and seek to it."""
        self._restoring = True
        try:
            for p in partitions:
                st = self.checkpointer.restore(p)
                self.sink.restore(st.offsets)
                self.source.seek(p, st.offsets)
            self.leader.start()
        finally:
            self._restoring = False

    def revoke(self, partitions: Iterable[int]) -> None:
        """Checkpoint the partitions, then forget them (another instance takes them). After
        the loop failed nothing is checkpointed: the state may be half-applied, and the last
        checkpoint stays valid."""
        parts = [p for p in partitions if p in self.pipeline.partitions]
        if parts and not self.failed:
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
            self._alarmed(out.alarms)  # extra partition monitors' (the leader's come below)
            n += out.consumed
        self.checkpointer.consumed(n)
        saved = self.checkpointer.due() and bool(self.pipeline.partitions)
        if saved:
            self.checkpoint()
        self.leader.tick(merge_now=saved)
        if self.leader.leading:
            self._hook(self.hooks.tick)
        self._steps += 1
        self._last_step = time.monotonic()
        return n

    def _alarmed(self, alarms: Iterable[DriftDetected]) -> None:
        """Log each alarm, keep it, and hand it to the alarm hook (retrain triggers)."""
        for alarm in alarms:
            self.alarms.append(alarm)
            fields = dataclasses.asdict(alarm)
            fields["event_ts"] = fields.pop("ts")  # "ts" is the log line's own time
            log.info("drift detected", extra=fields)
            self._hook(self.hooks.on_alarm, alarm)

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
        exhausted = False
        try:
            while not self.stop_event.is_set():
                n = self.step()
                if n == 0 and until_exhausted is not None and until_exhausted():
                    exhausted = True
                    break
        except BaseException:
            self.failed = True  # nothing may be checkpointed now, not even on a revoke
            raise
        self.finish(exhausted)

    def finish(self, exhausted: bool) -> None:
        """Checkpoint, let the leader merge what the checkpoint reported (every held bucket
        when the source is ``exhausted``: a finite source's end, after which nothing can come)
        and give the lease up."""
        if self.pipeline.partitions:
            self.checkpoint()
        if exhausted and not self.leader.leading:
            self._await_lease()
        if exhausted or self.leader.leading:
            self.leader.merge(final=exhausted)
        self.leader.close()

    def _await_lease(self) -> None:
        """At a finite source's end the decisions are due, but a previous process killed
        while leading holds the lease until it runs out: wait for it (at most one lease
        period and two renewals; a stop ends the wait), so that a run ends with its
        decisions taken rather than left to the next start."""
        lease = self.leader.lease
        if lease is None:
            return
        s = self.leader.settings
        deadline = time.monotonic() + s.lease_s + 2 * s.renew_s
        log.info("waiting for the leader lease to take the final decisions")
        while not self.leader.leading and time.monotonic() < deadline:
            if self.leader.renewing:
                self.stop_event.wait(0.05)  # the renewal thread takes the lease when free
            else:
                lease.tick()
                self.stop_event.wait(min(0.25, s.renew_s))
            if self.stop_event.is_set():
                return

    def stop(self) -> None:
        """Ask the loop to finish its batch, checkpoint and return (signal-safe)."""
        self.stop_event.set()
