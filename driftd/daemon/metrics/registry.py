"""Registry state as Prometheus metrics, read from the database at scrape time.

Versions in service (with their lineage as labels), traffic weights, promotions and rollbacks,
and retrain jobs by state with their durations all come from the registry's tables, so they are
exact across restarts and the same whichever driftd process is scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import sqlalchemy as sa
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from driftd.registry import schema as t
from driftd.retrain.abc import JobState
from driftd.retrain.jobs import retrain_jobs

log = logging.getLogger("driftd.metrics")
JOB_BUCKETS_S = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
IN_SERVICE = ("staging", "canary", "production")
JOB_STATES = tuple(state.value for state in JobState)


def _version_info() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_model_version_info",
        "Versions in staging, canary or production; labels carry their lineage.",
        labels=["model", "version", "stage", "alias", "run", "data_version", "code_version",
                "parent"],
    )  # fmt: skip


def _weights() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_canary_weight",
        "Traffic share per version, as last published.",
        labels=["model", "version"],
    )


def _promotions() -> CounterMetricFamily:
    return CounterMetricFamily(
        "driftd_promotions", "Versions that entered production.", labels=["model"]
    )


def _rollbacks() -> CounterMetricFamily:
    return CounterMetricFamily("driftd_rollbacks", "Versions rolled back.", labels=["model"])


def _job_states() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "driftd_retrain_jobs", "Retrain jobs per state.", labels=["model", "state"]
    )


def _job_durations() -> HistogramMetricFamily:
    return HistogramMetricFamily(
        "driftd_retrain_job_duration_seconds",
        "Duration of finished retrain jobs (last attempt).",
        labels=["model", "outcome"],
    )


class RegistryCollector(Collector):
    """Versions in service, traffic, promotions, rollbacks and retrain jobs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (and without a query)."""
        yield from (_version_info(), _weights(), _promotions(), _rollbacks())
        yield from (_job_states(), _job_durations())

    def collect(self) -> Iterator[Metric]:
        """Read the registry; a database error is logged and yields nothing (never a 500)."""
        try:
            with self.engine.connect() as conn:
                families = [
                    self._versions(conn),
                    self._weights(conn),
                    *self._transitions(conn),
                    *self._jobs(conn),
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
        promoted, rolled = _promotions(), _rollbacks()
        s, v, m = t.stage_history, t.versions, t.models
        counts = conn.execute(
            sa.select(m.c.name, s.c.stage, sa.func.count())
            .join(v, v.c.id == s.c.version_id)
            .join(m, m.c.id == v.c.model_id)
            .where(s.c.stage.in_(("production", "rolled_back")))
            .group_by(m.c.name, s.c.stage)
        ).all()
        found = {(name, stage): float(n) for name, stage, n in counts}
        # Every registered model has both counters, at 0 before its first promotion/rollback.
        for name in conn.execute(sa.select(m.c.name).order_by(m.c.name)).scalars():
            promoted.add_metric([name], found.get((name, "production"), 0.0))
            rolled.add_metric([name], found.get((name, "rolled_back"), 0.0))
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
