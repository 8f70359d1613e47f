"""Runs left ``running`` by a retrain attempt that died, closed as failed with the reason.

A job's child process opens its registry run tagged with the job id and attempt and closes it
itself, whether training succeeds or raises. Only a killed child (its worker died and the
lease expired, a timeout, a cancelled job) leaves the run ``running``. Once the job has moved
past that attempt, the lease argument in ``driftd.retrain.jobs`` says the child is dead and can
write nothing more, so the worker closes the run as ``failed`` with the job's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from driftd.registry import Registry
from driftd.registry.errors import Conflict
from driftd.retrain.abc import JOB_ATTEMPT_ENV, JOB_ID_ENV, Job, JobState, JobStore
from driftd.retrain.jobs import LEASE_LOST

log = logging.getLogger("driftd.retrain")
ACTOR = "driftd-retrain"
JOB_TAG, ATTEMPT_TAG = "job_id", "job_attempt"


def attempt_tags(job_id: str | None, attempt: int | None) -> dict[str, Any]:
    """The run tags naming the job attempt that opened the run (none outside a job)."""
    if not job_id or attempt is None:
        return {}
    return {JOB_TAG: job_id, ATTEMPT_TAG: int(attempt)}


def env_attempt_tags(env: Mapping[str, str]) -> dict[str, Any]:
    """``attempt_tags`` from the variables the executor sets for a job's child process."""
    attempt = env.get(JOB_ATTEMPT_ENV, "")
    return attempt_tags(env.get(JOB_ID_ENV), int(attempt) if attempt.isdigit() else None)


def abandoned_reason(job_id: str, attempt: int, job: Job | None, now: float) -> str | None:
    """Why the run of ``attempt`` of job ``job_id`` will never be closed by its own process;
    None while that attempt may still be running. An attempt whose lease expired at ``now`` is
    over, as for ``JobQueue.recover``: its worker kills its child before the lease ends."""
    what = f"attempt {attempt} of job {job_id} abandoned"
    if job is None:
        return f"{what}: the job no longer exists"
    if job.state == JobState.RUNNING and job.attempts == attempt:
        if job.lease_until is not None and job.lease_until < now:
            return f"{what}: {LEASE_LOST}"
        return None
    if job.state == JobState.CANCELLED:
        return f"{what}: job cancelled"
    # The job's error is this attempt's while no later attempt has ended.
    own_error = (job.state in (JobState.QUEUED, JobState.FAILED) and job.attempts == attempt) or (
        job.state == JobState.RUNNING and job.attempts == attempt + 1
    )
    if own_error and job.error:
        return f"{what}: {job.error}"
    return f"{what}: its process ended without closing the run (job {job.state})"


def close_abandoned_runs(registry: Registry, queue: JobStore) -> list[str]:
    """Close, as failed with the reason, every open run whose job attempt is over; their ids."""
    closed = []
    for run in registry.open_runs():
        job_id, attempt = run.tags.get(JOB_TAG), run.tags.get(ATTEMPT_TAG)
        if not isinstance(job_id, str) or not isinstance(attempt, int):
            continue  # not a job's run (a retrain in the CLI, a run from the API)
        reason = abandoned_reason(job_id, attempt, queue.get(job_id), queue.clock())
        if reason is None:
            continue
        try:
            registry.finish_run(run.id, ACTOR, status="failed", reason=reason)
        except Conflict:
            continue  # it was closed meanwhile
        log.warning("run closed", extra={"run": run.id, "model": run.model, "reason": reason})
        closed.append(run.id)
    return closed


def run_sweeper(registry: Registry, queue: JobStore) -> Callable[[], object]:
    """What a worker calls before each claim: close the runs of attempts that are over."""
    return lambda: close_abandoned_runs(registry, queue)
