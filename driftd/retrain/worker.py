"""The retrain worker: claim a job, run it with an executor while heartbeating its lease,
record the outcome. Runs in its own thread (or process), never on the daemon's event loop.

The executor runs in a background thread; this thread renews the lease every
``heartbeat_s``. If a renewal is refused (lease expired, job cancelled or taken over) or none
has succeeded ``lease_s - margin_s`` after the last good one (measured from *before* that
heartbeat's transaction, on the monotonic clock), the worker sets the executor's ``stop``
event: the child's process group is SIGKILLed and reaped before the lease can expire.
See ``driftd.retrain.jobs`` for the whole no-double-run argument.

Before each claim the worker calls its ``sweep``: the daemon's closes the registry runs of
attempts that died (``driftd.retrain.abandoned``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from driftd.retrain.abc import Executor, Job, JobStore, Outcome

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """``host:pid:random``: unique per process start, readable in ``driftd`` job listings."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims and runs retrain jobs one at a time."""

    def __init__(
        self,
        queue: JobStore,
        executor: Executor,
        worker_id: str | None = None,
        *,
        lease_s: float = 60.0,
        heartbeat_s: float | None = None,
        margin_s: float | None = None,
        poll_s: float = 1.0,
        sweep: Callable[[], object] | None = None,
    ) -> None:
        self.queue = queue
        self.executor = executor
        self.worker_id = worker_id or default_worker_id()
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else lease_s / 4
        self.margin_s = margin_s if margin_s is not None else lease_s / 4
        if not 0 < self.heartbeat_s < self.lease_s - self.margin_s:
            raise ValueError("need 0 < heartbeat_s < lease_s - margin_s")
        self.poll_s = poll_s
        self.sweep = sweep

    def run_once(self) -> Job | None:
        """Claim one due job and run it to its end; the job as recorded, or None if none."""
        self._sweep()  # first: its time is not taken from the next job's lease
        claimed_at = time.monotonic()  # before the claim: the lease cannot start earlier
        job = self.queue.claim(self.worker_id, self.lease_s)
        if job is None:
            return None
        fields = _fields(job, self.worker_id)
        log.info(
            "job %s (%s) picked: attempt %d of %d, trigger %s",
            job.id, job.model, job.attempts, job.max_attempts, job.trigger.get("kind"),
            extra={**fields, "trigger": job.trigger.get("kind")},
        )  # fmt: skip
        log.info("job %s (%s) attempt %d started", job.id, job.model, job.attempts, extra=fields)
        started = time.monotonic()
        outcome, lost = self._execute(job, claimed_at)
        fields["duration_s"] = round(time.monotonic() - started, 3)
        if lost is not None:
            log.warning("job %s: %s; its trainer was killed", job.id, lost, extra=fields)
            self.queue.fail(job.id, self.worker_id, lost)  # fenced: no-op if no longer ours
        elif outcome.ok:
            self.queue.succeed(job.id, self.worker_id, outcome.result)
            summary = _summary(outcome.result)
            log.info(
                "job %s (%s) finished: %s", job.id, job.model, summary or outcome.reason,
                extra={**fields, **summary},
            )  # fmt: skip
        else:
            log.warning(
                "job %s (%s) attempt %d failed: %s", job.id, job.model, job.attempts,
                outcome.reason, extra={**fields, "reason": outcome.reason},
            )  # fmt: skip
            self.queue.fail(job.id, self.worker_id, outcome.reason)
        return self.queue.get(job.id)

    def run_forever(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set; errors are logged and the loop goes on."""
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("retrain worker %s: error, retrying", self.worker_id)
                ran = None
            if ran is None:
                stop.wait(self.poll_s)

    def _sweep(self) -> None:
        """Run the sweep; its failure is logged, never stops the worker."""
        if self.sweep is None:
            return
        try:
            self.sweep()
        except Exception:
            log.exception(
                "retrain worker %s: sweep failed, retried before the next claim", self.worker_id
            )

    def _execute(self, job: Job, last_ok: float) -> tuple[Outcome, str | None]:
        """Run the executor in a thread, heartbeating; (outcome, why the lease was lost)."""
        stop = threading.Event()
        box: list[Outcome] = []

        def target() -> None:
            try:
                box.append(self.executor.run(job, stop))
            except Exception as exc:  # an executor bug must not look like a success
                log.exception("executor failed on job %s", job.id)
                box.append(Outcome(False, f"executor error: {type(exc).__name__}: {exc}"))

        thread = threading.Thread(target=target, name=f"retrain-{job.id[:8]}", daemon=True)
        thread.start()
        lost: str | None = None
        next_beat = time.monotonic() + self.heartbeat_s
        while thread.is_alive():
            thread.join(min(0.1, self.heartbeat_s))
            now = time.monotonic()
            if lost is None and now >= next_beat:
                before = now
                try:
                    if self.queue.heartbeat(job.id, self.worker_id, self.lease_s):
                        last_ok = before
                    else:
                        lost = "lease lost (expired, cancelled or taken over)"
                except Exception as exc:  # the database may come back before the deadline
                    log.warning("job %s: heartbeat failed: %s", job.id, exc)
                next_beat = time.monotonic() + self.heartbeat_s
            if lost is None and time.monotonic() >= last_ok + self.lease_s - self.margin_s:
                lost = "lease not renewed in time"
            if lost is not None:
                stop.set()
        return box[0], lost


def _fields(job: Job, worker_id: str) -> dict[str, Any]:
    """What every log record of a job carries, for structured logs."""
    return {"job_id": job.id, "model": job.model, "attempt": job.attempts, "worker": worker_id}


def _summary(result: dict[str, Any] | None) -> dict[str, Any]:
    """The outcome of a retrain (its version, whether it was promoted, its primary metric and
    the tuning's trials) from a job's result; empty for a result of another shape."""
    if not isinstance(result, dict):
        return {}
    keys = ("version", "promoted", "run_id", "trials", "best_value")
    out = {k: result[k] for k in keys if k in result}
    primary = (result.get("evaluation") or {}).get("primary")
    if isinstance(primary, dict):
        out["primary"] = {k: primary[k] for k in ("metric", "lower_bound") if k in primary}
    return out
