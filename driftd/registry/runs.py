"""Runs and datasets: dataset snapshots (one per content hash) and training runs (params,
seeds, code, environment, trigger, metrics), recorded, read, and the runs still open."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.errors import Conflict, InvalidRequest, NotFound
from driftd.registry.metric_series import (
    MetricPoint,
    Steps,
    check_steps,
    existing_steps,
    insert_steps,
    read_series,
)
from driftd.registry.names import check_model_name
from driftd.registry.records import DatasetInfo, RunInfo
from driftd.registry.rows import ensure_model, row_exists
from driftd.registry.writer import Writer

RUN_STATUSES = ("running", "finished", "failed", "killed")


def run_infos(conn: sa.Connection, run_ids: list[str]) -> list[RunInfo]:
    """The runs with these ids (those that exist), in no particular order."""
    if not run_ids:
        return []
    rows = conn.execute(
        sa.select(t.runs, t.models.c.name)
        .join(t.models, t.models.c.id == t.runs.c.model_id)
        .where(t.runs.c.id.in_(run_ids))
    )
    return [
        RunInfo(
            id=r.id,
            model=r.name,
            status=r.status,
            params=dict(r.params),
            metrics=dict(r.metrics),
            tags=dict(r.tags),
            seeds=dict(r.seeds),
            code=dict(r.code),
            environment=dict(r.environment),
            dataset_id=r.dataset_id,
            trigger=None if r.trigger is None else dict(r.trigger),
            started_at=r.started_at,
            ended_at=r.ended_at,
            created_by=r.created_by,
        )
        for r in rows
    ]


def dataset_infos(conn: sa.Connection, ids: list[int]) -> list[DatasetInfo]:
    """The datasets with these ids (those that exist), in no particular order."""
    if not ids:
        return []
    rows = conn.execute(sa.select(t.datasets).where(t.datasets.c.id.in_(ids)))
    return [
        DatasetInfo(
            id=int(r.id),
            sha256=r.sha256,
            row_count=int(r.row_count),
            window_start=r.window_start,
            window_end=r.window_end,
            source_offsets=dict(r.source_offsets),
            schema=dict(r.schema),
            uri=r.uri,
            created_at=r.created_at,
            created_by=r.created_by,
        )
        for r in rows
    ]


def _add_steps(w: Writer, run_id: str, series: dict[str, list[tuple[int, float | None]]]) -> int:
    """Insert a run's checked series; Conflict when one of its steps is already stored."""
    if not series:
        return 0
    clash = existing_steps(w.conn, run_id, series) & {
        (k, step) for k, points in series.items() for step, _ in points
    }
    if clash:
        key, step = min(clash)
        raise Conflict(f"run {run_id} already has step {step} of {key!r}")
    return insert_steps(w.conn, run_id, series, w.now)


class Runs(RegistryCore):
    """Record and read datasets and runs."""

    def register_dataset(
        self,
        sha256: str,
        row_count: int,
        uri: str,
        actor: str,
        window: tuple[float | None, float | None] = (None, None),
        source_offsets: Mapping[str, Any] | None = None,
        schema: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> int:
        """Record a dataset snapshot; its id. The same content is recorded once: registering it
        again (another URI, e.g. a retried job's new snapshot directory) returns the first
        record, whose URI holds the same bytes."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InvalidRequest(f"dataset sha256 must be 64 lowercase hex digits, got {sha256!r}")
        if row_count < 0:
            raise InvalidRequest(f"dataset row_count must be ≥ 0, got {row_count}")
        payload = {
            "sha256": sha256,
            "row_count": row_count,
            "uri": uri,
            "window_start": window[0],
            "window_end": window[1],
            "source_offsets": dict(source_offsets or {}),
            "schema": dict(schema or {}),
        }

        def change(w: Writer) -> dict[str, Any]:
            found = w.conn.execute(
                sa.select(t.datasets.c.id, t.datasets.c.row_count).where(
                    t.datasets.c.sha256 == sha256
                )
            ).first()
            if found is not None:
                if found.row_count != row_count:
                    raise Conflict(
                        f"dataset {found.id} has sha256 {sha256} with {found.row_count} rows, "
                        f"not {row_count}: one content hash cannot have two row counts"
                    )
                return {"id": int(found.id)}
            new_id = w.conn.execute(
                t.datasets.insert().values(created_at=w.now, created_by=w.actor, **payload)
            ).inserted_primary_key[0]  # type: ignore[index]
            w.audit("dataset.register", f"dataset:{new_id}", None, payload)
            return {"id": int(new_id)}

        return int(self.write(actor, "dataset.register", payload, request_id, change)["id"])

    def start_run(
        self,
        model: str,
        actor: str,
        params: Mapping[str, Any] | None = None,
        seeds: Mapping[str, Any] | None = None,
        code: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        dataset_id: int | None = None,
        trigger: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Open a run for ``model`` (created when new); returns the run id."""
        check_model_name(model)
        payload = {
            "model": model,
            "params": dict(params or {}),
            "seeds": dict(seeds or {}),
            "code": dict(code or {}),
            "environment": dict(environment or {}),
            "tags": dict(tags or {}),
            "dataset_id": dataset_id,
            "trigger": dict(trigger) if trigger is not None else None,
        }

        def change(w: Writer) -> dict[str, Any]:
            model_id = ensure_model(w, model)
            if dataset_id is not None and not row_exists(w.conn, t.datasets, dataset_id):
                raise NotFound(f"dataset {dataset_id} does not exist")
            run_id = uuid.uuid4().hex
            fields = {k: v for k, v in payload.items() if k != "model"}
            w.conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    model_id=model_id,
                    status="running",
                    metrics={},
                    started_at=w.now,
                    created_by=w.actor,
                    **fields,
                )
            )
            w.audit("run.start", f"run:{run_id}", None, payload)
            return {"id": run_id}

        return str(self.write(actor, "run.start", payload, request_id, change)["id"])

    def finish_run(
        self,
        run_id: str,
        actor: str,
        status: str = "finished",
        metrics: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        reason: str = "",
        steps: Steps | None = None,
    ) -> None:
        """Close a run with its final status and metrics; ``params`` replace the recorded ones
        (tuning settles them only at the end), ``tags`` are merged into them. A ``reason`` (why
        it failed) is kept as the tag ``end_reason`` and in the audit record. ``steps`` (key ->
        [(epoch, value)]) are stored as the run's metric series, in the same transaction."""
        if status not in RUN_STATUSES[1:]:
            raise InvalidRequest(
                f"run status {status!r} cannot end a run; expected one of "
                f"{', '.join(RUN_STATUSES[1:])}"
            )
        new_metrics = dict(metrics or {})
        new_tags = dict(tags or {})
        if reason:
            new_tags["end_reason"] = reason
        series = check_steps(steps or {})
        payload = {
            "run_id": run_id,
            "status": status,
            "metrics": new_metrics,
            "params": dict(params) if params is not None else None,
            "tags": new_tags,
        }
        if series:  # the request's identity covers the values; the audit record their counts
            payload["steps"] = {k: [list(p) for p in v] for k, v in series.items()}

        def change(w: Writer) -> dict[str, Any]:
            row = w.conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            if row.status != "running":
                raise Conflict(f"run {run_id} already ended with status {row.status}")
            values: dict[str, Any] = {
                "status": status,
                "metrics": {**row.metrics, **new_metrics},
                "tags": {**row.tags, **new_tags},
                "ended_at": w.now,
            }
            if params is not None:
                values["params"] = dict(params)
            w.conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))
            _add_steps(w, run_id, series)
            audited = {**payload, "steps": {k: len(v) for k, v in series.items()}}
            w.audit("run.finish", f"run:{run_id}", {"status": row.status}, audited, reason)
            return {}

        self.write(actor, "run.finish", payload, request_id, change)

    def log_steps(
        self, run_id: str, steps: Steps, actor: str, request_id: str | None = None
    ) -> int:
        """Add points to a running run's metric series (key -> [(step, value)]); how many.
        A step a series already has is a Conflict: history is appended, never rewritten."""
        series = check_steps(steps)
        payload = {"run_id": run_id, "steps": {k: [list(p) for p in v] for k, v in series.items()}}

        def change(w: Writer) -> dict[str, Any]:
            row = w.conn.execute(sa.select(t.runs.c.status).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            if row.status != "running":
                raise Conflict(f"run {run_id} ended with status {row.status}; log steps before")
            n = _add_steps(w, run_id, series)
            counts = {k: len(v) for k, v in series.items()}
            w.audit("run.log_steps", f"run:{run_id}", None, {"run_id": run_id, "steps": counts})
            return {"points": n}

        return int(self.write(actor, "run.log_steps", payload, request_id, change)["points"])

    def set_run_tags(
        self,
        run_id: str,
        tags: Mapping[str, Any],
        actor: str,
        reason: str = "",
        request_id: str | None = None,
    ) -> None:
        """Merge ``tags`` into a run's tags (any status): e.g. that its artifacts were deleted."""
        new_tags = dict(tags)
        payload = {"run_id": run_id, "tags": new_tags}

        def change(w: Writer) -> dict[str, Any]:
            row = w.conn.execute(sa.select(t.runs.c.tags).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            merged = {**row.tags, **new_tags}
            w.conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(tags=merged))
            w.audit("run.tag", f"run:{run_id}", dict(row.tags), merged, reason)
            return {}

        self.write(actor, "run.tag", payload, request_id, change)

    def list_runs(self, model: str | None = None, status: str | None = None) -> list[RunInfo]:
        """Runs, newest first, optionally of one model and/or with one status (the rest of
        the filters are ``driftd.registry.run_query``'s, over these)."""
        query = sa.select(t.runs.c.id)
        if model is not None:
            query = query.join(t.models, t.models.c.id == t.runs.c.model_id).where(
                t.models.c.name == model
            )
        if status is not None:
            query = query.where(t.runs.c.status == status)
        query = query.order_by(t.runs.c.started_at.desc(), t.runs.c.id)
        with self.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
            by_id = {r.id: r for r in run_infos(conn, ids)}
        return [by_id[i] for i in ids if i in by_id]

    def metric_series(
        self, run_ids: list[str], keys: list[str] | None = None
    ) -> dict[str, dict[str, list[MetricPoint]]]:
        """run id -> metric key -> its points by step (runs without series are absent)."""
        with self.engine.connect() as conn:
            return read_series(conn, run_ids, keys)

    def run_versions(self, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """run id -> the versions registered from it: model, version, stage, artifact URI and
        aliases, oldest first."""
        if not run_ids:
            return {}
        v, m, a = t.versions, t.models, t.aliases
        query = (
            sa.select(v.c.run_id, m.c.name, v.c.version, v.c.stage, v.c.artifact_uri, v.c.model_id)
            .join(m, m.c.id == v.c.model_id)
            .where(v.c.run_id.in_(run_ids))
            .order_by(v.c.created_at, v.c.id)
        )
        out: dict[str, list[dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            model_ids = list({r.model_id for r in rows})
            aliases: dict[tuple[int, int], list[str]] = {}
            for al in conn.execute(sa.select(a).where(a.c.model_id.in_(model_ids))):
                aliases.setdefault((al.model_id, al.version), []).append(al.alias)
        for r in rows:
            out.setdefault(r.run_id, []).append(
                {
                    "model": r.name,
                    "version": int(r.version),
                    "stage": r.stage,
                    "artifact_uri": r.artifact_uri,
                    "aliases": sorted(aliases.get((r.model_id, int(r.version)), [])),
                }
            )
        return out

    def open_runs(self) -> list[RunInfo]:
        """Runs still ``running``, oldest first (to find those whose process died)."""
        query = sa.select(t.runs.c.id).where(t.runs.c.status == RUN_STATUSES[0])
        with self.engine.connect() as conn:
            ids = list(conn.execute(query.order_by(t.runs.c.started_at, t.runs.c.id)).scalars())
            by_id = {r.id: r for r in run_infos(conn, ids)}
        return [by_id[i] for i in ids if i in by_id]

    def get_run(self, run_id: str) -> RunInfo:
        """One run by id."""
        with self.engine.connect() as conn:
            found = run_infos(conn, [run_id])
        if not found:
            raise NotFound(f"run {run_id!r} does not exist")
        return found[0]

    def get_dataset(self, dataset_id: int) -> DatasetInfo:
        """One dataset by id."""
        with self.engine.connect() as conn:
            found = dataset_infos(conn, [dataset_id])
        if not found:
            raise NotFound(f"dataset {dataset_id} does not exist")
        return found[0]
