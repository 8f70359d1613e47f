"""The retrain job queue on SQLite and PostgreSQL: ids, dedupe, one running job per model,
cooldown, retries with backoff, lease expiry and cancellation."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from driftd.contracts.monitor import DriftDetected
from driftd.db import make_engine
from driftd.retrain.jobs import (
    LEASE_LOST,
    JobQueue,
    job_id,
    retrain_jobs,
)
from driftd.retrain.policy import alarm_trigger, schedule_trigger
from tests.retrain.conftest import Clock

SPEC: dict[str, Any] = {"entry": "tests.retrain.trainers:ok", "params": {}}


def alarm(ts: float = 50.0, model: str = "m") -> DriftDetected:
    return DriftDetected(model, "v1", "predictions", "psi", "drift", ts, 0.4, 0.2)


def test_ids_are_deterministic_and_a_replay_creates_no_second_job(
    queue: JobQueue, db_url: str
) -> None:
    trig = alarm_trigger(alarm())
    assert job_id("m", trig) == job_id("m", alarm_trigger(alarm()))
    assert job_id("m", trig) != job_id("m", alarm_trigger(alarm(ts=51.0)))
    assert job_id("m", trig) != job_id("other", trig)
    assert len(job_id("m", trig)) == 32
    first = queue.submit("m", trig, SPEC)
    assert first.created and first.job is not None and first.job.id == job_id("m", trig)
    again = queue.submit("m", trig, SPEC)
    assert not again.created and again.job == first.job and "duplicate trigger" in again.reason
    # The job runs and finishes; a replay after a restart (a new engine) still finds it.
    claimed = queue.claim("w", 30)
    assert claimed is not None and queue.succeed(claimed.id, "w", {"auc": 0.9})
    restarted = JobQueue(make_engine(db_url), queue.clock)
    replay = restarted.submit("m", trig, SPEC)
    assert not replay.created and replay.job is not None and replay.job.state == "succeeded"
    assert len(restarted.list()) == 1
    restarted.engine.dispose()


def test_a_queued_job_absorbs_new_triggers_and_one_may_wait_behind_a_running_one(
    queue: JobQueue,
) -> None:
    a = queue.submit("m", alarm_trigger(alarm(1.0)), SPEC)
    b = queue.submit("m", alarm_trigger(alarm(2.0)), SPEC)
    assert a.job is not None and not b.created and b.job == a.job and "queued job" in b.reason
    assert queue.claim("w1", 30) is not None
    c = queue.submit("m", alarm_trigger(alarm(3.0)), SPEC)
    assert c.created
    assert queue.claim("w2", 30) is None  # the model's job is still running
    assert queue.succeed(a.job.id, "w1", None)
    d = queue.claim("w2", 30)
    assert d is not None and c.job is not None and d.id == c.job.id


def _insert_queued(engine: sa.Engine, model: str, n: int, now: float) -> None:
    with engine.begin() as conn:
        for i in range(n):
            trig = {"kind": "manual", "key": f"{model}-{i}"}
            conn.execute(
                retrain_jobs.insert().values(
                    id=job_id(model, trig),
                    model=model,
                    state="queued",
                    trigger=trig,
                    spec=SPEC,
                    attempts=0,
                    max_attempts=3,
                    backoff_s=0.0,
                    max_backoff_s=0.0,
                    next_attempt_at=now,
                    created_at=now + i,
                )
            )


def _race(barrier: threading.Barrier, claims: list[Any], q: JobQueue, w: str) -> None:
    barrier.wait()
    claims.append((w, q.claim(w, 30)))


def test_racing_workers_run_at_most_one_job_per_model(
    queue: JobQueue, db_url: str, clock: Clock
) -> None:
    _insert_queued(queue.engine, "m", 3, clock.t)
    _insert_queued(queue.engine, "n", 3, clock.t)
    queues = [JobQueue(make_engine(db_url), clock) for _ in range(6)]
    rounds = 0
    while len(queue.list(state="succeeded")) < 6:
        rounds += 1
        assert rounds <= 20, "no progress"
        barrier = threading.Barrier(len(queues))
        claims: list[Any] = []

        threads = [
            threading.Thread(target=_race, args=(barrier, claims, q, f"w{i}"))
            for i, q in enumerate(queues)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [(w, j) for w, j in claims if j is not None]
        models = [j.model for _, j in won]
        assert won and len(models) == len(set(models)), won  # never two for one model
        running = [j.model for j in queue.list(state="running")]
        assert sorted(running) == sorted(models)
        for w, j in won:
            assert queue.succeed(j.id, w, None)
    for q in queues:
        q.engine.dispose()


def test_cooldown_refuses_a_job_too_soon_after_the_last(queue: JobQueue, clock: Clock) -> None:
    first = queue.submit("m", alarm_trigger(alarm(1.0)), SPEC, cooldown_s=3600)
    assert first.created
    job = queue.claim("w", 30)
    assert job is not None
    clock.t += 100
    assert queue.succeed(job.id, "w", None)
    clock.t += 10
    refused = queue.submit("m", alarm_trigger(alarm(2.0)), SPEC, cooldown_s=3600)
    assert refused.job is None and not refused.created
    assert refused.reason.startswith("cooldown") and "3600" in refused.reason
    assert queue.last_activity("m") == clock.t - 10
    other = queue.submit("n", alarm_trigger(alarm(2.0, "n")), SPEC, cooldown_s=3600)
    assert other.created  # the cooldown is per model
    clock.t += 3600
    assert queue.submit("m", alarm_trigger(alarm(2.0)), SPEC, cooldown_s=3600).created


def test_retries_back_off_exponentially_then_fail_for_good(queue: JobQueue, clock: Clock) -> None:
    sub = queue.submit(
        "m", schedule_trigger_at(0), SPEC, max_attempts=3, backoff_s=10, max_backoff_s=15
    )
    assert sub.job is not None
    jid, t0 = sub.job.id, clock.t
    for attempt, delay in ((1, 10.0), (2, 15.0)):  # 10 * 2**1 = 20, capped at 15
        job = queue.claim("w", 30)
        assert job is not None and job.attempts == attempt
        assert queue.fail(jid, "w", f"boom {attempt}")
        after = queue.get(jid)
        assert after is not None and after.state == "queued" and after.error == f"boom {attempt}"
        assert after.next_attempt_at == clock.t + delay
        clock.t += delay - 1
        assert queue.claim("w", 30) is None  # not due yet
        clock.t += 1
    job = queue.claim("w", 30)
    assert job is not None and job.attempts == 3
    assert queue.fail(jid, "w", "boom 3")
    final = queue.get(jid)
    assert final is not None and final.state == "failed" and final.error == "boom 3"
    assert final.attempts == 3 and final.finished_at == clock.t == t0 + 25
    clock.t += 10_000
    assert queue.claim("w", 30) is None


def schedule_trigger_at(hour: int) -> dict[str, Any]:
    import datetime as dt

    return schedule_trigger(dt.datetime(2025, 1, 1, hour, tzinfo=dt.UTC))


def test_an_expired_lease_is_recovered_as_a_failed_attempt(queue: JobQueue, clock: Clock) -> None:
    sub = queue.submit("m", schedule_trigger_at(1), SPEC, max_attempts=2, backoff_s=5)
    assert sub.job is not None
    jid = sub.job.id
    job = queue.claim("old", lease_s=10)
    assert job is not None and job.lease_until == clock.t + 10
    clock.t += 8
    assert queue.heartbeat(jid, "old", 10)  # renewed until t+18
    assert queue.claim("new", 10) is None
    clock.t += 11  # past the lease: the old worker is presumed dead
    assert not queue.heartbeat(jid, "old", 10)  # an expired lease cannot be renewed
    assert queue.recover() == [jid]
    rec = queue.get(jid)
    assert rec is not None and rec.state == "queued" and rec.error == LEASE_LOST
    assert rec.owner is None and rec.next_attempt_at == clock.t + 5
    assert not queue.succeed(jid, "old", {"late": True})  # fenced: the old worker's result
    clock.t += 5
    again = queue.claim("new", 10)
    assert again is not None and again.attempts == 2 and again.owner == "new"
    clock.t += 11
    assert queue.claim("third", 10) is None  # recovered inside claim; attempts are exhausted
    gone = queue.get(jid)
    assert gone is not None and gone.state == "failed" and gone.error == LEASE_LOST


def test_cancel_and_list(queue: JobQueue, clock: Clock) -> None:
    a = queue.submit("m", schedule_trigger_at(1), SPEC)
    clock.t += 1  # jobs are claimed oldest first
    b = queue.submit("n", schedule_trigger_at(1), SPEC)
    assert a.job is not None and b.job is not None
    running = queue.claim("w", 30)
    assert running is not None and running.id == a.job.id
    assert queue.cancel(b.job.id) and queue.cancel(a.job.id)
    assert not queue.cancel(a.job.id)  # already finished
    assert not queue.heartbeat(a.job.id, "w", 30)  # the worker will kill its trainer
    assert not queue.fail(a.job.id, "w", "killed")
    assert [j.state for j in queue.list()] == ["cancelled", "cancelled"]
    assert [j.id for j in queue.list(model="n")] == [b.job.id]
    assert queue.list(state="queued") == []
    assert queue.get("0" * 32) is None
