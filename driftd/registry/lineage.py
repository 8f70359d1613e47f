"""Lineage: the tree from a version back to its run, dataset, trigger and parent versions.

One connection and a fixed number of batched queries per tree, so a lineage query stays fast
however long the chain of parents is (up to ``depth``)."""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.names import ModelRef, parse_ref
from driftd.registry.records import ApprovalInfo
from driftd.registry.rows import alias_map, find_version, resolve_number, version_info
from driftd.registry.runs import dataset_infos, run_infos
from driftd.registry.stages import history_entries


def _approvals_by_version(
    conn: sa.Connection, chain: list[sa.Row[Any]]
) -> dict[int, list[dict[str, Any]]]:
    """The approvals of each version row in ``chain`` (by row id), as plain data, in order."""
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
    return approvals


def _lineage_tree(
    conn: sa.Connection, model_id: int, model: str, chain: list[sa.Row[Any]]
) -> dict[str, Any]:
    amap = alias_map(conn, model_id)
    run_ids = [v.run_id for v in chain if v.run_id is not None]
    runs = {x.id: x for x in run_infos(conn, run_ids)}
    ds_ids = [x.dataset_id for x in runs.values() if x.dataset_id is not None]
    datasets = {d.id: d for d in dataset_infos(conn, ds_ids)}
    approvals = _approvals_by_version(conn, chain)
    history = history_entries(conn, model_id, [int(v.version) for v in chain])
    nodes: list[dict[str, Any]] = []
    for v in chain:
        info = version_info(conn, model, v, amap)
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


class Lineage(RegistryCore):
    """The lineage tree of a version."""

    def lineage(self, ref: str | ModelRef, depth: int = 5) -> dict[str, Any]:
        """The tree version → run → dataset → trigger → parent version, with approvals and
        stage history; parents are followed up to ``depth`` levels.

        One connection and a fixed number of batched queries per call: the parent chain first,
        then runs, datasets, approvals and history for all of its versions at once.
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        with self.engine.connect() as conn:
            model_id, number = resolve_number(conn, r)
            chain = [find_version(conn, model_id, r.model, number)]
            while chain[-1].parent_version is not None and len(chain) <= depth:
                chain.append(find_version(conn, model_id, r.model, int(chain[-1].parent_version)))
            return _lineage_tree(conn, model_id, r.model, chain)
