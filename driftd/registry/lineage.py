"""Lineage reads: runs, datasets, and the tree from a version back to its data and trigger.

One connection and a fixed number of batched queries per tree, so a lineage query stays fast
however long the chain of parents is (up to ``depth``)."""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.errors import NotFound
from driftd.registry.names import ModelRef, parse_ref
from driftd.registry.queries import Reads
from driftd.registry.records import ApprovalInfo, DatasetInfo, RunInfo


class LineageReads(Reads):
    """Runs, datasets and lineage on top of the other reads."""

    @staticmethod
    def _runs(conn: sa.Connection, run_ids: list[str]) -> list[RunInfo]:
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

    @staticmethod
    def _datasets(conn: sa.Connection, ids: list[int]) -> list[DatasetInfo]:
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

    def get_run(self, run_id: str) -> RunInfo:
        """One run by id."""
        with self.engine.connect() as conn:
            found = self._runs(conn, [run_id])
        if not found:
            raise NotFound(f"run {run_id!r} does not exist")
        return found[0]

    def get_dataset(self, dataset_id: int) -> DatasetInfo:
        """One dataset by id."""
        with self.engine.connect() as conn:
            found = self._datasets(conn, [dataset_id])
        if not found:
            raise NotFound(f"dataset {dataset_id} does not exist")
        return found[0]

    def lineage(self, ref: str | ModelRef, depth: int = 5) -> dict[str, Any]:
        """The tree version → run → dataset → trigger → parent version, with approvals and
        stage history; parents are followed up to ``depth`` levels.

        One connection and a fixed number of batched queries per call: the parent chain first,
        then runs, datasets, approvals and history for all of its versions at once.
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        with self.engine.connect() as conn:
            model_id, number = self._resolve_number(conn, r)
            chain = [self._version_row(conn, model_id, r.model, number)]
            while chain[-1].parent_version is not None and len(chain) <= depth:
                chain.append(
                    self._version_row(conn, model_id, r.model, int(chain[-1].parent_version))
                )
            return self._lineage_tree(conn, model_id, r.model, chain)

    def _lineage_tree(
        self, conn: sa.Connection, model_id: int, model: str, chain: list[sa.Row[Any]]
    ) -> dict[str, Any]:
        amap = self._alias_map(conn, model_id)
        run_ids = [v.run_id for v in chain if v.run_id is not None]
        runs = {x.id: x for x in self._runs(conn, run_ids)}
        ds_ids = [x.dataset_id for x in runs.values() if x.dataset_id is not None]
        datasets = {d.id: d for d in self._datasets(conn, ds_ids)}
        vids = [int(v.id) for v in chain]
        approvals: dict[int, list[dict[str, Any]]] = {v: [] for v in vids}
        for a in conn.execute(
            sa.select(t.approvals)
            .where(t.approvals.c.version_id.in_(vids))
            .order_by(t.approvals.c.created_at, t.approvals.c.id)
        ):
            number = next(int(v.version) for v in chain if v.id == a.version_id)
            granted = ApprovalInfo(number, a.stage, a.approver, a.role, a.comment, a.created_at)
            approvals[int(a.version_id)].append(granted.to_dict())
        history = self._history_entries(conn, model_id, [int(v.version) for v in chain])
        nodes: list[dict[str, Any]] = []
        for v in chain:
            info = self._version_info(conn, model, v, amap)
            node: dict[str, Any] = {"version": info.to_dict(), "uri": info.uri}
            run = runs.get(v.run_id) if v.run_id is not None else None
            if run is not None:
                node["run"] = run.to_dict()
                node["trigger"] = run.trigger
                if run.dataset_id in datasets:
                    ds = datasets[run.dataset_id]
                    node["dataset"] = {**ds.to_dict(), "short": ds.short}
            node["approvals"] = approvals[int(v.id)]
            node["history"] = [h.to_dict() for h in history if h.version == v.version]
            nodes.append(node)
        for child, parent in itertools.pairwise(nodes):
            child["parent"] = parent
        last = chain[-1]
        if last.parent_version is not None:
            nodes[-1]["parent"] = {
                "uri": f"models:/{model}/{last.parent_version}",
                "truncated": True,
            }
        return nodes[0]
