"""The retrain package's interfaces: the job store and the executor, with the values they pass.

``JobStore`` is what triggers, the worker and the run sweeper need of the persisted job queue
(``driftd.retrain.jobs.JobQueue`` implements it on the registry database); ``Executor`` runs
one job to its end (``driftd.retrain.executor``). Both are structural: any object with these
methods fits.
"""

from __future__ import annotations

import builtins
import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# Set by the executor for a job's child process, which tags its run with them (env_attempt_tags).
JOB_ID_ENV, JOB_ATTEMPT_ENV = "DRIFTD_JOB_ID", "DRIFTD_JOB_ATTEMPT"


class JobState(enum.StrEnum):
    """A job's state; the values are what the ``retrain_jobs.state`` column stores.

    ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | (``queued`` again, to retry), and
    ``cancelled`` from ``queued`` or ``running``.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Job:
    """One row of ``retrain_jobs``. ``error`` is the reason of the last failed attempt."""

    id: str
    model: str
    state: JobState
    trigger: dict[str, Any]
    spec: dict[str, Any]
    attempts: int
    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    next_attempt_at: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    owner: str | None
    heartbeat_at: float | None
    lease_until: float | None
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Submission:
    """What ``submit`` did: ``job`` is the new or existing job (None when refused)."""

    job: Job | None
    created: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job's run ended: ``reason`` is a one-line explanation, ``result`` the trainer's."""

    ok: bool
    reason: str
    result: dict[str, Any] | None = None


class JobStore(Protocol):
    """Persisted retrain jobs with leases: at most one running job per model.

    Every method is one short transaction; ``clock`` is the store's wall clock (seconds), the
    one its leases and cooldowns are measured on. Any method may raise
    ``sqlalchemy.exc.SQLAlchemyError`` (or its backend's equivalent) when the database fails;
    nothing is then written.
    """

    clock: Callable[[], float]

    def submit(
        self,
        model: str,
        trigger: Mapping[str, Any],
        spec: Mapping[str, Any],
        max_attempts: int = 3,
        *,
        cooldown_s: float = 0.0,
        backoff_s: float = 60.0,
        max_backoff_s: float = 3600.0,
    ) -> Submission:
        """Queue a job unless the trigger already has one, the model has a queued one, or the
        model had a job within ``cooldown_s``; the submission says which.

        :raises ValueError: ``max_attempts`` is below 1.
        """
        ...

    def claim(self, worker_id: str, lease_s: float) -> Job | None:
        """Start the oldest due queued job whose model has no running job, leased to
        ``worker_id`` for ``lease_s``; None if there is none. Expired leases are recovered
        first."""
        ...

    def heartbeat(self, job_id: str, worker_id: str, lease_s: float) -> bool:
        """Extend ``worker_id``'s live lease; False when it was lost (expired, cancelled, or
        taken over)."""
        ...

    def succeed(self, job_id: str, worker_id: str, result: Mapping[str, Any] | None) -> bool:
        """Record a successful run; False (and nothing written) if the caller lost the job."""
        ...

    def fail(self, job_id: str, worker_id: str, reason: str) -> bool:
        """Record a failed attempt (queued again after a backoff, or failed for good); False
        if the caller lost the job."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False if it is unknown or already finished."""
        ...

    def recover(self, now: float | None = None) -> builtins.list[str]:
        """Fail the attempts of running jobs whose lease expired; their ids."""
        ...

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if any."""
        ...

    def list(self, model: str | None = None, state: str | None = None) -> builtins.list[Job]:
        """Jobs, oldest first, optionally of one model and/or in one state."""
        ...

    def last_activity(self, model: str) -> float | None:
        """When a job of ``model`` last started or finished (for cooldowns); None if never."""
        ...


class Executor(Protocol):
    """Runs a job to its end; returns early (failed) once ``stop`` is set."""

    def run(self, job: Job, stop: threading.Event | None = None) -> Outcome:
        """Run ``job.spec``; never raises for a failing trainer."""
        ...
