"""The persisted retrain job queue: a table and its state machine (``JobStore`` on SQL).

States (``JobState``): ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | (``queued``
again, to retry) and ``cancelled`` from ``queued`` or ``running``. A job's id is a hash of its
model and its trigger, so a replayed alarm or a restarted daemon cannot create the same job
twice.

No double run, the lease argument:

1. ``claim`` sets ``state=running``, ``owner`` and ``lease_until = now + lease_s``. A partial
   unique index (one ``running`` row per model) and, on PostgreSQL, a per-model advisory lock
   make the claim atomic: at most one running job per model, whatever the number of workers.
2. A running job is claimable again only after ``recover`` has seen ``lease_until`` pass on
   its own clock. ``heartbeat`` extends the lease only while the worker still owns a live
   lease; once it has expired, the old owner can never renew it.
3. The worker (``driftd.retrain.worker``) measures, on its monotonic clock and *before* each
   heartbeat transaction, when its current lease will end; if no heartbeat has succeeded by
   ``lease_s - margin`` after the last good one, it SIGKILLs its child's process group and
   reaps it. So the old trainer is dead before the lease expires, as long as the hosts' clocks
   agree within ``margin``.
4. If the worker process itself dies, its child dies with it (``PR_SET_PDEATHSIG`` set by the
   executor, and again by every ``jobrun`` process for torchrun's ranks).
5. Stale results are fenced: ``succeed``/``fail``/``heartbeat`` only act on a row that is still
   ``running`` under the caller's ``owner``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from driftd.db import metadata, write_transaction
from driftd.retrain.abc import Job, JobState, Submission

__all__ = ["LEASE_LOST", "Job", "JobQueue", "JobState", "Submission", "job_id", "retrain_jobs"]

LEASE_LOST = "worker lost (lease expired)"

_running = sa.text("state = 'running'")

retrain_jobs = sa.Table(
    "retrain_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("backoff_s", sa.Float, nullable=False),
    sa.Column("max_backoff_s", sa.Float, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("owner", sa.String(255)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("lease_until", sa.Float),
    sa.Column("result", sa.JSON),
    sa.Index("ix_retrain_jobs_due", "state", "next_attempt_at"),
    sa.Index("ix_retrain_jobs_model", "model", "state"),
    sa.Index(
        "uq_retrain_jobs_one_running",
        "model",
        unique=True,
        postgresql_where=_running,
        sqlite_where=_running,
    ),
)


def job_id(model: str, trigger: Mapping[str, Any]) -> str:
    """The deterministic id of the job that ``trigger`` starts for ``model`` (32 hex)."""
    ident = [model, trigger["kind"], trigger["key"]]
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _job(row: sa.Row[Any]) -> Job:
    mapping = row._mapping  # noqa: SLF001 - the documented Row API
    fields = {c.name: mapping[c.name] for c in retrain_jobs.columns}
    return Job(**{**fields, "state": JobState(fields["state"])})


def _last_activity(model: str) -> sa.Select[Any]:
    """When a job of ``model`` last started or finished; jobs never started do not count."""
    t = retrain_jobs
    when = sa.func.max(sa.func.coalesce(t.c.finished_at, t.c.started_at))
    return sa.select(when).where(t.c.model == model, t.c.started_at.is_not(None))


def _lock_model(conn: sa.Connection, model: str, wait: bool) -> bool:
    """Serialise writers of one model's jobs on PostgreSQL (SQLite's BEGIN IMMEDIATE already
    serialises every writer); False when ``not wait`` and another transaction holds it."""
    if conn.dialect.name != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha256(f"retrain:{model}".encode()).digest()[:8], "big")
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = conn.execute(sa.text(f"SELECT {fn}(:k)::text"), {"k": key - (1 << 63)}).scalar()
    return got != "false"


class JobQueue:
    """Retrain jobs in the database (a ``JobStore``); every method is one short transaction."""

    def __init__(self, engine: Engine, clock: Callable[[], float] | None = None) -> None:
        import time

        self.engine = engine
        self.clock = clock or time.time

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
        """Queue a job unless the same trigger already has one (a replay), the model already has
        a queued job (which absorbs this trigger), or a job of the model started or finished
        within ``cooldown_s``. A job may be queued behind a running one: it waits for it."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, not {max_attempts}")
        jid, now = job_id(model, trigger), self.clock()
        t = retrain_jobs
        with write_transaction(self.engine) as conn:
            _lock_model(conn, model, wait=True)
            row = conn.execute(sa.select(t).where(t.c.id == jid)).first()
            if row is not None:
                job = _job(row)
                return Submission(job, False, f"duplicate trigger: job {jid} exists ({job.state})")
            waiting = conn.execute(
                sa.select(t.c.id).where(t.c.model == model, t.c.state == JobState.QUEUED).limit(1)
            ).scalar()
            if waiting is not None:  # it has not started: it will train on the newest data
                reason = f"model {model} already has a queued job {waiting}"
                return Submission(self._get(conn, waiting), False, reason)
            if cooldown_s > 0:
                last = conn.execute(_last_activity(model)).scalar()
                if last is not None and now - last < cooldown_s:
                    return Submission(
                        None,
                        False,
                        f"cooldown: model {model} had a job at {last:.0f}; "
                        f"next allowed at {last + cooldown_s:.0f} (cooldown {cooldown_s:g}s)",
                    )
            values = {
                "id": jid,
                "model": model,
                "state": JobState.QUEUED,
                "trigger": dict(trigger),
                "spec": dict(spec),
                "attempts": 0,
                "max_attempts": max_attempts,
                "backoff_s": backoff_s,
                "max_backoff_s": max_backoff_s,
                "next_attempt_at": now,
                "created_at": now,
            }
            conn.execute(t.insert().values(**values))
            return Submission(self._get(conn, jid), True, "queued")

    def claim(self, worker_id: str, lease_s: float) -> Job | None:
        """Start the oldest due queued job whose model has no running job; None if none.

        Expired leases are recovered first, in the same transaction."""
        t = retrain_jobs
        now = self.clock()
        with write_transaction(self.engine) as conn:
            self._recover(conn, now)
            busy = sa.select(t.c.model).where(t.c.state == JobState.RUNNING).scalar_subquery()
            query = (
                sa.select(t.c.id, t.c.model)
                .where(
                    t.c.state == JobState.QUEUED, t.c.next_attempt_at <= now, t.c.model.not_in(busy)
                )
                .order_by(t.c.next_attempt_at, t.c.created_at, t.c.id)
                .limit(20)
            )
            for cand in conn.execute(query).all():
                if not _lock_model(conn, cand.model, wait=False):
                    continue  # another worker is claiming for this model right now
                # Under the model's lock, a fresh statement sees every committed claim.
                mine = sa.select(t.c.id).where(t.c.id == cand.id, t.c.state == JobState.QUEUED)
                if conn.dialect.name == "postgresql":
                    mine = mine.with_for_update(skip_locked=True)
                running = conn.execute(
                    sa.select(t.c.id).where(t.c.model == cand.model, t.c.state == JobState.RUNNING)
                ).first()
                if running is not None or conn.execute(mine).first() is None:
                    continue
                conn.execute(
                    t.update()
                    .where(t.c.id == cand.id, t.c.state == JobState.QUEUED)
                    .values(
                        state=JobState.RUNNING,
                        owner=worker_id,
                        attempts=t.c.attempts + 1,
                        started_at=now,
                        heartbeat_at=now,
                        lease_until=now + lease_s,
                    )
                )
                return self._get(conn, cand.id)
        return None

    def heartbeat(self, job_id: str, worker_id: str, lease_s: float) -> bool:
        """Extend the lease; False when it was lost (expired, cancelled, or taken over)."""
        t = retrain_jobs
        now = self.clock()
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                t.update()
                .where(
                    t.c.id == job_id,
                    t.c.owner == worker_id,
                    t.c.state == JobState.RUNNING,
                    t.c.lease_until >= now,
                )
                .values(heartbeat_at=now, lease_until=now + lease_s)
            )
            return done.rowcount == 1

    def succeed(self, job_id: str, worker_id: str, result: Mapping[str, Any] | None) -> bool:
        """Record a successful run; False (and nothing written) if the caller lost the job."""
        t = retrain_jobs
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                t.update()
                .where(t.c.id == job_id, t.c.owner == worker_id, t.c.state == JobState.RUNNING)
                .values(
                    state=JobState.SUCCEEDED,
                    finished_at=self.clock(),
                    result=dict(result or {}),
                    lease_until=None,
                )
            )
            return done.rowcount == 1

    def fail(self, job_id: str, worker_id: str, reason: str) -> bool:
        """Record a failed attempt: queued again after a backoff, or failed for good once
        ``max_attempts`` attempts have failed. False if the caller lost the job."""
        t = retrain_jobs
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                self._locked(
                    conn, t.c.id == job_id, t.c.owner == worker_id, t.c.state == JobState.RUNNING
                )
            ).first()
            if row is None:
                return False
            self._fail_attempt(conn, _job(row), reason, self.clock())
            return True

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job (a running one's worker kills its trainer at its next
        heartbeat); False if the job is unknown or already finished."""
        t = retrain_jobs
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                t.update()
                .where(t.c.id == job_id, t.c.state.in_((JobState.QUEUED, JobState.RUNNING)))
                .values(state=JobState.CANCELLED, finished_at=self.clock(), lease_until=None)
            )
            return done.rowcount == 1

    def recover(self, now: float | None = None) -> builtins.list[str]:
        """Treat running jobs whose lease expired (their worker died) as failed attempts."""
        with write_transaction(self.engine) as conn:
            return self._recover(conn, self.clock() if now is None else now)

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if any."""
        with self.engine.connect() as conn:
            return self._get(conn, job_id)

    def list(self, model: str | None = None, state: str | None = None) -> builtins.list[Job]:
        """Jobs, oldest first, optionally of one model and/or in one state."""
        t = retrain_jobs
        query = sa.select(t).order_by(t.c.created_at, t.c.id)
        if model is not None:
            query = query.where(t.c.model == model)
        if state is not None:
            query = query.where(t.c.state == state)
        with self.engine.connect() as conn:
            return [_job(r) for r in conn.execute(query)]

    def last_activity(self, model: str) -> float | None:
        """When a job of ``model`` last started or finished (for cooldown policies)."""
        with self.engine.connect() as conn:
            value = conn.execute(_last_activity(model)).scalar()
            return None if value is None else float(value)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _get(conn: sa.Connection, jid: str) -> Job | None:
        row = conn.execute(sa.select(retrain_jobs).where(retrain_jobs.c.id == jid)).first()
        return None if row is None else _job(row)

    @staticmethod
    def _locked(conn: sa.Connection, *where: Any) -> sa.Select[Any]:
        query = sa.select(retrain_jobs).where(*where)
        return query.with_for_update() if conn.dialect.name == "postgresql" else query

    def _recover(self, conn: sa.Connection, now: float) -> builtins.list[str]:
        t = retrain_jobs
        rows = conn.execute(
            self._locked(conn, t.c.state == JobState.RUNNING, t.c.lease_until < now)
        ).all()
        for row in rows:
            self._fail_attempt(conn, _job(row), LEASE_LOST, now)
        return [row.id for row in rows]

    @staticmethod
    def _fail_attempt(conn: sa.Connection, job: Job, reason: str, now: float) -> None:
        t = retrain_jobs
        common = {"error": reason, "owner": None, "lease_until": None}
        if job.attempts >= job.max_attempts:
            values = {"state": JobState.FAILED, "finished_at": now, **common}
        else:
            delay = min(job.backoff_s * 2 ** max(job.attempts - 1, 0), job.max_backoff_s)
            values = {"state": JobState.QUEUED, "next_attempt_at": now + delay, **common}
        conn.execute(t.update().where(t.c.id == job.id).values(**values))
