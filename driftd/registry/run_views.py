"""What ``driftd runs`` and ``/api/v1/runs`` read: a page of runs, one run in full (dataset,
metric series, versions registered from it) and runs side by side. Fetching lives here; the
deciding (filters, sort, differences) is ``run_query``'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.errors import InvalidRequest, NotFound
from driftd.registry.records import DatasetInfo, RunInfo
from driftd.registry.run_query import Comparison, RunFilter, compare_runs, select_runs
from driftd.registry.runs import Runs, dataset_infos

MIN_PREFIX = 6  # characters of a run id that ``resolve_run_id`` accepts as an abbreviation


def resolve_run_id(registry: Runs, text: str) -> str:
    """The run id ``text`` names: a whole id, or a unique prefix of at least 6 characters."""
    if not text or len(text) > 32 or not all(c.isalnum() or c in "_-" for c in text):
        raise NotFound(f"run {text!r} does not exist")
    c = t.runs.c
    with registry.engine.connect() as conn:
        if conn.execute(sa.select(c.id).where(c.id == text)).first() is not None:
            return text
        if len(text) < MIN_PREFIX:
            raise NotFound(f"run {text!r} does not exist (a prefix needs {MIN_PREFIX}+ characters)")
        found = list(conn.execute(sa.select(c.id).where(c.id.startswith(text)).limit(2)).scalars())
    if not found:
        raise NotFound(f"run {text!r} does not exist")
    if len(found) > 1:
        raise InvalidRequest(f"run prefix {text!r} is ambiguous; give more characters")
    return str(found[0])


def find_runs(
    registry: Runs,
    flt: RunFilter,
    sort: str = "started_at",
    descending: bool = True,
    limit: int | None = None,
) -> list[RunInfo]:
    """The runs that pass ``flt``, sorted, at most ``limit``."""
    candidates = registry.list_runs(model=flt.model, status=flt.status)
    return select_runs(candidates, flt, sort, descending, limit)


def _datasets(registry: Runs, runs: Sequence[RunInfo]) -> dict[int, DatasetInfo]:
    ids = sorted({r.dataset_id for r in runs if r.dataset_id is not None})
    with registry.engine.connect() as conn:
        return {d.id: d for d in dataset_infos(conn, ids)}


def run_detail(registry: Runs, run_id: str) -> dict[str, Any]:
    """One run in full: ``run`` (the record), ``dataset`` (or None), ``series`` (metric key ->
    [{step, value, ts}]) and ``versions`` registered from it."""
    run = registry.get_run(resolve_run_id(registry, run_id))
    ds = _datasets(registry, [run]).get(run.dataset_id) if run.dataset_id else None
    series = registry.metric_series([run.id]).get(run.id, {})
    return {
        "run": run.to_dict(),
        "dataset": None if ds is None else ds.to_dict(),
        "series": {k: [p.to_dict() for p in points] for k, points in series.items()},
        "versions": registry.run_versions([run.id]).get(run.id, []),
    }


def run_comparison(registry: Runs, run_ids: Sequence[str]) -> Comparison:
    """``run_ids`` (whole or prefixes) side by side, in the order given."""
    ids = [resolve_run_id(registry, i) for i in run_ids]
    runs = [registry.get_run(i) for i in ids]
    return compare_runs(runs, _datasets(registry, runs))
