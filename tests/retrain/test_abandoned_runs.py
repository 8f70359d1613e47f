"""A retrain attempt that dies leaves its run ``running``: once its job has moved past that
attempt (lease expired and retried, failed for good, cancelled), the worker closes the run as
failed with the reason; and a retried snapshot of the same content is one dataset, not two."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from driftd.db import make_engine
from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.retrain.abandoned import (
    attempt_tags,
    close_abandoned_runs,
)
from driftd.retrain.executor import Outcome
from driftd.retrain.jobs import LEASE_LOST, Job, JobQueue
from driftd.retrain.worker import Worker
from tests.retrain.conftest import Clock

LEASE_S = 10.0


@pytest.fixture
def registry(queue: JobQueue) -> Iterator[Registry]:
    """A registry on the job queue's database (as in the daemon)."""
    yield Registry(queue.engine, b"test-secret")


def _submit(queue: JobQueue, key: str, max_attempts: int = 3) -> str:
    sub = queue.submit("fraud", {"kind": "manual", "key": key}, {}, max_attempts, backoff_s=0.0)
    assert sub.job is not None
    return sub.job.id


def _start_attempt(queue: JobQueue, registry: Registry, worker: str) -> tuple[str, str]:
    """Claim the due job as ``worker`` and open its run as the job's child would."""
    job = queue.claim(worker, LEASE_S)
    assert job is not None
    run = registry.start_run("fraud", "driftd-retrain", tags=attempt_tags(job.id, job.attempts))
    return job.id, run


def test_a_retried_jobs_abandoned_run_is_closed_as_failed_with_the_reason(
    queue: JobQueue, registry: Registry, clock: Clock
) -> None:
    jid = _submit(queue, "k1")
    _, first = _start_attempt(queue, registry, "w1")
    assert close_abandoned_runs(registry, queue) == []  # its attempt is still running
    clock.t += LEASE_S + 1  # the worker died: its lease expires, another worker retries
    _, second = _start_attempt(queue, registry, "w2")
    assert close_abandoned_runs(registry, queue) == [first]
    run = registry.get_run(first)
    assert run.status == "failed" and run.ended_at is not None
    assert run.tags["end_reason"] == f"attempt 1 of job {jid} abandoned: {LEASE_LOST}"
    assert registry.get_run(second).status == "running"  # the retry is left alone
    assert close_abandoned_runs(registry, queue) == []  # once
    closing = [r for r in registry.audit_log(limit=100) if r.subject == f"run:{first}"]
    assert closing[-1].action == "run.finish" and LEASE_LOST in closing[-1].reason
    assert registry.verify_audit().ok


def test_a_run_is_closed_once_its_lease_expired_before_any_retry(
    queue: JobQueue, registry: Registry, clock: Clock
) -> None:
    jid = _submit(queue, "k2")
    _, first = _start_attempt(queue, registry, "w1")
    clock.t += LEASE_S - 1
    assert close_abandoned_runs(registry, queue) == []  # the lease still holds
    clock.t += 2  # expired: its worker has killed its child, or died with it
    assert close_abandoned_runs(registry, queue) == [first]
    reason = registry.get_run(first).tags["end_reason"]
    assert reason == f"attempt 1 of job {jid} abandoned: {LEASE_LOST}"


def test_runs_of_a_job_that_failed_for_good_or_was_cancelled_are_closed(
    queue: JobQueue, registry: Registry, clock: Clock
) -> None:
    _submit(queue, "once", max_attempts=1)
    _, lost = _start_attempt(queue, registry, "w1")
    clock.t += LEASE_S + 1
    queue.recover()  # failed for good: no retry will ever close it
    cancelled_job = _submit(queue, "cancel")
    _, cancelled = _start_attempt(queue, registry, "w2")
    assert queue.cancel(cancelled_job)
    manual = registry.start_run("fraud", "alice")  # not a job's run: never touched
    assert sorted(close_abandoned_runs(registry, queue)) == sorted([lost, cancelled])
    assert LEASE_LOST in registry.get_run(lost).tags["end_reason"]
    assert registry.get_run(cancelled).tags["end_reason"].endswith("abandoned: job cancelled")
    assert registry.get_run(manual).status == "running"


def test_a_run_whose_attempt_ended_normally_is_not_closed_twice(
    queue: JobQueue, registry: Registry
) -> None:
    jid = _submit(queue, "ok")
    job_id, run = _start_attempt(queue, registry, "w1")
    registry.finish_run(run, "driftd-retrain")  # the child closes its own run
    assert queue.succeed(job_id, "w1", {})
    assert close_abandoned_runs(registry, queue) == []
    assert registry.get_run(run).status == "finished" and jid == job_id


def test_a_dataset_is_registered_once_per_content_hash(registry: Registry) -> None:
    first = registry.register_dataset("ab" * 32, 100, "file:///work/attempt-1/snapshot", "t")
    again = registry.register_dataset("ab" * 32, 100, "file:///work/attempt-2/snapshot", "t")
    other = registry.register_dataset("cd" * 32, 100, "file:///work/attempt-2/snapshot", "t")
    assert again == first and other != first
    assert registry.get_dataset(first).uri == "file:///work/attempt-1/snapshot"
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(t.datasets.c.sha256)).scalars().all()
    assert sorted(rows) == ["ab" * 32, "cd" * 32]


def test_the_database_refuses_a_second_row_with_the_same_hash(db_url: str) -> None:
    engine = make_engine(db_url)
    registry = Registry.open(db_url)
    registry.register_dataset("ab" * 32, 1, "file:///a", "t")
    row = {
        "sha256": "ab" * 32,
        "row_count": 1,
        "uri": "file:///b",
        "source_offsets": {},
        "schema": {},
        "created_at": 0.0,
        "created_by": "t",
    }
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(t.datasets.insert().values(**row))
    registry.engine.dispose()
    engine.dispose()


class _Done:
    """An executor whose jobs succeed at once."""

    def run(self, job: Job, stop: threading.Event | None = None) -> Outcome:
        return Outcome(True, "succeeded", {"job": job.id})


def test_the_worker_sweeps_before_each_claim_and_outlives_a_failing_sweep(
    queue: JobQueue,
) -> None:
    calls: list[str] = []

    def sweep() -> None:
        calls.append("sweep")
        raise RuntimeError("registry down")

    worker = Worker(queue, _Done(), "w1", lease_s=LEASE_S, sweep=sweep)
    assert worker.run_once() is None and calls == ["sweep"]
    _submit(queue, "after")
    job = worker.run_once()
    assert job is not None and job.state == "succeeded" and calls == ["sweep"] * 2
