"""Registry state as Prometheus metrics, read from the database at scrape time.

Versions in service (with their lineage as labels), traffic weights, promotions and rollbacks,
retrain jobs by state with their durations and oldest ages, and the outbox's delivery backlog
all come from the registry's tables, so they are exact across restarts and the same whichever
driftd process is scraped (aggregate them with ``max``, not ``sum``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import numpy as np
import sqlalchemy as sa
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from driftd.daemon.metrics.kinds import FROM_REGISTRY, help_text
from driftd.registry import schema as t
from driftd.registry.names import ALLOWED, Stage
from driftd.retrain.abc import JobState
from driftd.retrain.jobs import retrain_jobs

log = logging.getLogger("driftd.metrics")
JOB_BUCKETS_S = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
IN_SERVICE = ("staging", "canary", "production")
JOB_STATES = tuple(state.value for state in JobState)
AGED_JOB_STATES = (JobState.QUEUED.value, JobState.RUNNING.value)
"""The job states whose oldest job's age is exported."""
OUTBOX_STATES = ("pending", "delivered", "dead")
PROMOTED_FROM = frozenset(src.value for src, dst in ALLOWED.items() if Stage.PRODUCTION in dst)
"""The stages a promotion enters production from (staging, canary)."""


def _version_info() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_model_version_info",
        help_text(
            "Versions in staging, canary or production (value 1); labels carry their lineage.",
            "1 or 0",
            FROM_REGISTRY,
        ),
        labels=["model", "version", "stage", "alias", "run", "data_version", "code_version",
                "parent"],
    )  # fmt: skip


def _weights() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_canary_weight",
        help_text("Traffic share per version, as last published.", "ratio", FROM_REGISTRY),
        labels=["model", "version"],
    )


def _promotions() -> CounterMetricFamily:
    return CounterMetricFamily(
        "driftd_promotions",
        help_text(
            "Versions promoted to production (from staging or canary); a rollback that "
            "restores the previous champion is not a promotion.",
            "versions",
            FROM_REGISTRY,
        ),
        labels=["model"],
    )


def _rollbacks() -> CounterMetricFamily:
    return CounterMetricFamily(
        "driftd_rollbacks",
        help_text("Versions rolled back (canary or champion).", "versions", FROM_REGISTRY),
        labels=["model"],
    )


def _job_states() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_retrain_jobs",
        help_text("Retrain jobs per state.", "jobs", FROM_REGISTRY),
        labels=["model", "state"],
    )


def _job_durations() -> HistogramMetricFamily:
    return HistogramMetricFamily(
        "driftd_retrain_job_duration_seconds",
        help_text("Duration of finished retrain jobs (last attempt).", "seconds", FROM_REGISTRY),
        labels=["model", "outcome"],
    )


def _outbox_events() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_outbox_events",
        help_text(
            "Outbox events per delivery state: pending while a delivery target (webhook, "
            "control topic) has not handled it yet, dead once a target gave up on it, else "
            "delivered (with no target configured nothing is pending).",
            "events",
            FROM_REGISTRY,
        ),
        labels=["state"],
    )


def _outbox_age() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_outbox_oldest_pending_age_seconds",
        help_text(
            "Age of the oldest pending outbox event (0 when none is pending).",
            "seconds",
            FROM_REGISTRY,
        ),
    )


def _job_ages() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_retrain_job_oldest_age_seconds",
        help_text(
            "Age of the model's oldest retrain job in the state: queued since it was "
            "submitted (retries included), running since its attempt started; 0 when none.",
            "seconds",
            FROM_REGISTRY,
        ),
        labels=["model", "state"],
    )


class RegistryCollector(Collector):
    """Versions in service, traffic, promotions, rollbacks, retrain jobs and the outbox."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock  # wall time: the ages compare it with the rows' timestamps

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (and without a query)."""
        yield from (_version_info(), _weights(), _promotions(), _rollbacks())
        yield from (_job_states(), _job_durations(), _job_ages())
        yield from (_outbox_events(), _outbox_age())

    def collect(self) -> Iterator[Metric]:
        """Read the registry; a database error is logged and yields nothing (never a 500)."""
        now = self.clock()
        try:
            with self.engine.connect() as conn:
                families = [
                    self._versions(conn),
                    self._weights(conn),
                    *self._transitions(conn),
                    *self._jobs(conn),
                    self._job_ages(conn, now),
                    *self._outbox(conn, now),
                ]
        except sa.exc.SQLAlchemyError as exc:
            log.warning("registry metrics unavailable", extra={"error": str(exc)})
            return
        yield from families

    @staticmethod
    def _versions(conn: sa.Connection) -> GaugeMetricFamily:
        info = _version_info()
        v, m, r, d, a = t.versions, t.models, t.runs, t.datasets, t.aliases
        rows = conn.execute(
            sa.select(
                m.c.name,
                v.c.model_id,
                v.c.version,
                v.c.stage,
                v.c.run_id,
                v.c.parent_version,
                r.c.code,
                d.c.sha256,
            )
            .join(m, m.c.id == v.c.model_id)
            .outerjoin(r, r.c.id == v.c.run_id)
            .outerjoin(d, d.c.id == r.c.dataset_id)
            .where(v.c.stage.in_(IN_SERVICE))
        ).all()
        aliases: dict[tuple[int, int], list[str]] = {}
        for mid, ver, alias in conn.execute(sa.select(a.c.model_id, a.c.version, a.c.alias)):
            aliases.setdefault((mid, ver), []).append(alias)
        for row in rows:
            code = (row.code or {}).get("commit") or ""
            info.add_metric(
                [
                    row.name,
                    str(row.version),
                    row.stage,
                    ",".join(sorted(aliases.get((row.model_id, row.version), []))),
                    row.run_id or "",
                    (row.sha256 or "")[:12],
                    str(code)[:12],
                    "" if row.parent_version is None else str(row.parent_version),
                ],
                1.0,
            )
        return info

    @staticmethod
    def _weights(conn: sa.Connection) -> GaugeMetricFamily:
        weight = _weights()
        dep, m = t.deployments, t.models
        for row in conn.execute(
            sa.select(m.c.name, dep.c.weights)
            .join(m, m.c.id == dep.c.model_id)
            .where(dep.c.valid_to.is_(None))
        ):
            for version, w in sorted(row.weights.items()):
                weight.add_metric([row.name, str(version)], float(w))
        return weight

    @staticmethod
    def _transitions(conn: sa.Connection) -> list[CounterMetricFamily]:
        """Promotions and rollbacks from the stage history. A promotion enters production from
        a stage that may move there; the previous champion that a rollback restores enters it
        from archived, and is not one."""
        promoted, rolled = _promotions(), _rollbacks()
        s, v, m = t.stage_history, t.versions, t.models
        before = sa.func.lag(s.c.stage).over(partition_by=s.c.version_id, order_by=s.c.id)
        steps = sa.select(s.c.version_id, s.c.stage, before.label("before")).subquery()
        counts = conn.execute(
            sa.select(m.c.name, steps.c.stage, steps.c.before, sa.func.count())
            .join(v, v.c.id == steps.c.version_id)
            .join(m, m.c.id == v.c.model_id)
            .where(steps.c.stage.in_((Stage.PRODUCTION.value, Stage.ROLLED_BACK.value)))
            .group_by(m.c.name, steps.c.stage, steps.c.before)
        ).all()
        found: dict[tuple[str, str], float] = {}
        for name, stage, before_stage, n in counts:
            if stage == Stage.PRODUCTION.value and before_stage not in PROMOTED_FROM:
                continue  # a restore by a rollback (from archived)
            found[(name, stage)] = found.get((name, stage), 0.0) + float(n)
        # Every registered model has both counters, at 0 before its first promotion/rollback.
        for name in conn.execute(sa.select(m.c.name).order_by(m.c.name)).scalars():
            promoted.add_metric([name], found.get((name, Stage.PRODUCTION.value), 0.0))
            rolled.add_metric([name], found.get((name, Stage.ROLLED_BACK.value), 0.0))
        return [promoted, rolled]

    @staticmethod
    def _jobs(conn: sa.Connection) -> list[Metric]:
        j = retrain_jobs
        states = _job_states()
        # Every registered model (and any model with jobs) has every state, at 0 when empty.
        seen: dict[str, dict[str, float]] = {
            name: {} for name in conn.execute(sa.select(t.models.c.name)).scalars()
        }
        for model, state, n in conn.execute(
            sa.select(j.c.model, j.c.state, sa.func.count()).group_by(j.c.model, j.c.state)
        ):
            seen.setdefault(model, {})[state] = float(n)
        for model, have in sorted(seen.items()):
            for state in (*JOB_STATES, *sorted(set(have) - set(JOB_STATES))):
                states.add_metric([model, state], have.get(state, 0.0))
        hist = _job_durations()
        rows = conn.execute(
            sa.select(j.c.model, j.c.state, j.c.started_at, j.c.finished_at).where(
                j.c.state.in_(("succeeded", "failed")) & j.c.started_at.is_not(None)
            )
        ).all()
        groups: dict[tuple[str, str], list[float]] = {}
        for row in rows:
            if row.finished_at is not None:
                groups.setdefault((row.model, row.state), []).append(
                    row.finished_at - row.started_at
                )
        for model in seen:  # every model has both outcomes, empty until a job finishes
            for outcome in ("succeeded", "failed"):
                groups.setdefault((model, outcome), [])
        for (model, outcome), durations in sorted(groups.items()):
            arr = np.asarray(durations, dtype=np.float64)
            buckets = [(str(b), float(np.count_nonzero(arr <= b))) for b in JOB_BUCKETS_S]
            buckets.append(("+Inf", float(arr.size)))
            hist.add_metric([model, outcome], buckets, float(arr.sum()))
        return [states, hist]

    @staticmethod
    def _job_ages(conn: sa.Connection, now: float) -> GaugeMetricFamily:
        j = retrain_jobs
        ages = _job_ages()
        oldest: dict[tuple[str, str], float] = {}
        since = {JobState.QUEUED.value: j.c.created_at, JobState.RUNNING.value: j.c.started_at}
        for name, column in since.items():
            for model, first in conn.execute(
                sa.select(j.c.model, sa.func.min(column))
                .where((j.c.state == name) & column.is_not(None))
                .group_by(j.c.model)
            ):
                oldest[(model, name)] = max(now - float(first), 0.0)
        models = set(conn.execute(sa.select(t.models.c.name)).scalars())
        models |= {model for model, _ in oldest}
        for model in sorted(models):  # every model has both states, at 0 when it has no job
            for state in AGED_JOB_STATES:
                ages.add_metric([model, state], oldest.get((model, state), 0.0))
        return ages

    @staticmethod
    def _outbox(conn: sa.Connection, now: float) -> list[GaugeMetricFamily]:
        """Outbox rows by delivery state, and the oldest pending one's age. A row is pending
        while it lies beyond the cursor of the target furthest behind (cursors only move past
        handled rows, in id order)."""
        o, c, d = t.outbox, t.outbox_cursors, t.outbox_dead
        events, age = _outbox_events(), _outbox_age()
        low = conn.execute(sa.select(sa.func.min(c.c.last_id))).scalar()
        total = conn.execute(sa.select(sa.func.count()).select_from(o)).scalar_one()
        pending, first = 0, None
        if low is not None:
            pending, first = conn.execute(
                sa.select(sa.func.count(), sa.func.min(o.c.created_at)).where(o.c.id > low)
            ).one()
        handled = o.c.id <= low if low is not None else sa.true()
        dead = conn.execute(
            sa.select(sa.func.count(sa.distinct(d.c.outbox_id)))
            .select_from(d.join(o, o.c.id == d.c.outbox_id))
            .where(handled)
        ).scalar_one()
        counts = {"pending": pending, "delivered": total - pending - dead, "dead": dead}
        for state in OUTBOX_STATES:
            events.add_metric([state], float(counts[state]))
        age.add_metric([], 0.0 if first is None else max(now - float(first), 0.0))
        return [events, age]
