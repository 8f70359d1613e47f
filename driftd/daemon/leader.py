"""The leader's loop: hold the lease, merge the partitions' reports, decide, save, fenced.

Called by the runner after every poll. While this instance holds the lease (always, without
one: a replay, the embedded default) it restores the brain from the leader state once, then
every ``merge_every_s``:

1. reads the reports the partitions saved with their checkpoints (every instance's);
2. merges them and emits the buckets the global watermark has passed (``brain``): the
   detectors run on the merged stream and the rollout controller ticks at each bucket's end;
3. hands the alarms to the runner (logs, retrain triggers) — before the save, so a crash
   repeats them rather than losing them, and each action's id makes a repeat a no-op;
4. saves the brain and deletes the merged reports in one transaction fenced by its epoch.

A leader that loses the lease (taken over, or cut off from the database until its lease ran
out) drops its brain and stops deciding; a fenced write it had in flight is refused.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from driftd.contracts.monitor import DriftDetected
from driftd.daemon.abc import CheckpointStore
from driftd.daemon.alarm_log import Alarms
from driftd.daemon.brain import Brain
from driftd.daemon.lease import FencedOut, Lease
from driftd.daemon.sample import Sample
from driftd.errors import CheckpointError
from driftd.rollout.counts import Totals

# the window checks' explanations of a merge's alarms, by (model, version, stream)
Evidence = Mapping[tuple[str, str, str], Mapping[str, Any]]

if TYPE_CHECKING:
    from driftd.config import LeaderSettings

log = logging.getLogger("driftd.leader")


class Leader:
    """Runs a ``Brain`` while this instance leads."""

    def __init__(
        self,
        make_brain: Callable[[], Brain],
        store: CheckpointStore,
        pipeline: str,
        settings: LeaderSettings,
        lease: Lease | None = None,
        expected: Callable[[], Iterable[int]] = tuple,
        on_bucket: Callable[[], object] | None = None,
        on_alarms: Callable[[list[DriftDetected]], object] | None = None,
        on_labeled: Callable[[str, int], object] | None = None,
        on_incidents: Callable[[list[DriftDetected], Evidence], object] | None = None,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_brain = make_brain
        self.store = store
        self.pipeline = pipeline
        self.settings = settings
        self.lease = lease
        self.expected = expected
        self.on_bucket = on_bucket
        self.on_alarms = on_alarms
        self.on_labeled = on_labeled
        # the alarms again with the window checks' explanations: incidents (after on_alarms)
        self.on_incidents = on_incidents
        self.wall = wall
        self.clock = clock
        self.brain: Brain | None = None
        self._since = 0.0
        self._next_merge = -math.inf
        self.merges = 0
        self.merge_seconds = 0.0  # summed over merges (the metric's sum)
        self.fenced_out = 0
        self.failures = 0  # merges that raised (a bug): logged and retried
        self.on_step_down: list[Callable[[], object]] = []  # what forgets in-memory decisions
        # each model's champion reference (label, rows) for the window checks, when any uses it
        self.references: Callable[[], Mapping[str, tuple[str, Sample]]] | None = None
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    # -- leadership ----------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """True while this instance holds the lease (always without one)."""
        return self.lease is None or self.lease.held

    @property
    def renewing(self) -> bool:
        """Whether the lease's own thread renews (and acquires) it."""
        return self._renewer is not None and self._renewer.is_alive()

    @property
    def epoch(self) -> int | None:
        """The lease epoch held (0 without a lease), or None when not leading."""
        if self.lease is None:
            return 0
        return self.lease.epoch if self.lease.held else None

    def _brain(self) -> Brain:
        if self.brain is None:
            brain = self.make_brain()
            blob = self.store.load_leader(self.pipeline)
            if blob is not None:
                brain.load_blob(blob)
            self.brain = brain
            self._since = self.clock()
            self._next_merge = -math.inf
            log.info(
                "brain restored",
                extra={"pipeline": self.pipeline, "clock": brain.clock(), "epoch": self.epoch},
            )
        return self.brain

    def _step_down(self) -> None:
        if self.brain is not None:
            log.info("no longer leading", extra={"pipeline": self.pipeline})
            for hook in self.on_step_down:
                hook()
        self.brain = None

    # -- the loop ------------------------------------------------------------------------------
    def start(self) -> None:
        """Take the lease if free and restore the brain, without merging (at start-up, so
        that what the leader decided is readable before the first poll); from then on the
        lease is renewed by its own thread, so a long poll or merge cannot let it lapse."""
        if self.lease is not None:
            self.lease.tick()
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew_forever, name="lease", daemon=True
                )
                self._renewer.start()
        if self.leading:
            self._brain()

    def _renew_forever(self) -> None:
        lease = self.lease
        assert lease is not None
        while not self._stop.is_set():
            lease.tick()
            self._stop.wait(max(0.02, min(0.5, lease.until_next_try())))

    def tick(self, merge_now: bool = False) -> list[DriftDetected]:
        """Renew the lease when due and merge when due (or ``merge_now``: this instance just
        saved a checkpoint, so there is something to merge); return the alarms that fired."""
        if self.lease is not None and self._renewer is None:
            self.lease.tick()
        if not self.leading:
            self._step_down()
            return []
        if not merge_now and self.brain is not None and self.clock() < self._next_merge:
            return []
        return self.merge()

    def merge(self, final: bool = False) -> list[DriftDetected]:
        """One merge now (``final``: the source is exhausted, so emit every held bucket)."""
        if not self.leading:
            self._step_down()
            return []
        t0 = time.perf_counter()
        self._next_merge = self.clock() + self.settings.merge_every_s
        try:
            brain = self._brain()
            brain.absorb(self.store.reports(self.pipeline))
            if self.references is not None:
                for model, (label, rows) in self.references().items():
                    if brain.set_champion(model, label, rows):
                        log.info("reference switched", extra={"model": model, "reference": label})
            if final:
                watermark = math.inf
            else:
                waited = self.clock() - self._since >= self.settings.idle_s
                expected = () if waited else self.expected()  # only while it waits for them
                watermark = brain.watermark(self.wall(), expected, waited)
            alarms = brain.advance(watermark, self._bucket)
            evidence = brain.drain_evidence()
            for model, n in brain.drain_labeled().items():
                if self.on_labeled is not None:
                    self.on_labeled(model, n)
            if alarms and self.on_alarms is not None:
                self.on_alarms(alarms)  # before the save: a crash repeats, never loses them
            if self.on_incidents is not None:  # every merge: quiet incidents resolve too
                self.on_incidents(alarms, evidence)
            merged = {p: v.seq for p, v in brain.partitions.items()}
            fence = self.lease.fence if self.lease is not None else None
            self.store.save_leader(self.pipeline, brain.to_blob(), merged, fence)
        except FencedOut as exc:
            self.fenced_out += 1
            log.warning("leader fenced out", extra={"pipeline": self.pipeline, "why": str(exc)})
            if self.lease is not None:
                self.lease.epoch = None
            self._step_down()
            return []
        except (CheckpointError, sa.exc.SQLAlchemyError) as exc:
            # The database is away (or refused the save): decide nothing until it is back; the
            # lease steps this instance down if it stays away. The brain is reloaded then.
            log.warning("leader merge failed; retried", extra={"error": str(exc)[:300]})
            self._step_down()
            return []
        except Exception:
            # A bug in a decision must not stop ingestion: logged, the brain reloaded, retried.
            log.exception("leader merge failed; retried")
            self.failures += 1
            self._step_down()
            return []
        self.merges += 1
        self.merge_seconds += time.perf_counter() - t0
        return alarms

    def _bucket(self, _end: float) -> None:
        if self.on_bucket is not None:
            self.on_bucket()

    def close(self) -> None:
        """Give the lease up (a clean stop), so the next leader need not wait it out; what the
        brain holds stays readable (a replay's summary)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
            self._renewer = None
        if self.lease is not None:
            self.lease.release()

    # -- reading (the rollout, the metrics) ----------------------------------------------------
    def version_total(self, model: str, version: str) -> Totals:
        """A version's merged counts up to the event clock (zeros while not leading)."""
        brain = self.brain
        return brain.version_total(model, version) if brain is not None else Totals()

    def event_clock(self) -> float:
        """The end of the last bucket emitted: the decisions' clock (0.0 while not leading)."""
        brain = self.brain
        return brain.clock() if brain is not None else 0.0

    def alarms(self) -> Alarms:
        """The alarms kept by the brain (none while not leading)."""
        brain = self.brain
        return brain.alarms() if brain is not None else Alarms()
