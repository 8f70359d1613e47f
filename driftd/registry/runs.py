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
    ) -> None:
        """Close a run with its final status and metrics; ``params`` replace the recorded ones
        (tuning settles them only at the end), ``tags`` are merged into them. A ``reason`` (why
        it failed) is kept as the tag ``end_reason`` and in the audit record."""
        if status not in RUN_STATUSES[1:]:
            raise InvalidRequest(
                f"run status {status!r} cannot end a run; expected one of "
                f"{', '.join(RUN_STATUSES[1:])}"
            )
        new_metrics = dict(metrics or {})
        new_tags = dict(tags or {})
        if reason:
            new_tags["end_reason"] = reason
        payload = {
            "run_id": run_id,
            "status": status,
            "metrics": new_metrics,
            "params": dict(params) if params is not None else None,
            "tags": new_tags,
        }

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
            w.audit("run.finish", f"run:{run_id}", {"status": row.status}, payload, reason)
            return {}

        self.write(actor, "run.finish", payload, request_id, change)

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
