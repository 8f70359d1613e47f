"""Training runs in the API, as ``driftd runs`` shows them: ``GET /runs`` (filter by model,
status, trigger, tags and metric conditions; sort; limit), ``GET /runs/compare?ids=a,b`` (side
by side, with the fields that differ) and ``GET /runs/{id}`` (a run with its dataset, metric
series and versions). Viewer role and above.

``/runs/compare`` is declared before ``/runs/{id}``, and this router is included before
``reads``, whose ``/runs/{run_id}`` this one answers with a superset of its body (the run's
fields at the top level, as before, plus ``dataset``, ``series`` and ``versions``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from driftd.api.auth import registry_of, viewer
from driftd.api.schemas import MODEL_PATTERN, DatasetOut, ErrorOut, RunOut
from driftd.registry import Registry
from driftd.registry.run_query import RunFilter, check_sort, parse_condition, parse_tag
from driftd.registry.run_views import find_runs, resolve_run_id, run_comparison, run_detail

RUN_ID = r"^[0-9A-Za-z_-]{1,64}$"
Reg = Annotated[Registry, Depends(registry_of)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 422)
}

router = APIRouter(dependencies=[Depends(viewer)], responses=ERRORS, tags=["runs"])


class RunList(BaseModel):
    """Runs that passed the filters, in the order asked for."""

    items: list[RunOut]


class PointOut(BaseModel):
    """One point of a metric series: the step (epoch), its value (null: not finite), when."""

    step: int
    value: float | None
    ts: float


class RunVersionOut(BaseModel):
    """A version registered from a run."""

    model: str
    version: int
    stage: str
    artifact_uri: str
    aliases: list[str]


class RunDetail(RunOut):
    """A run (its record's fields, as ``RunOut``) with its dataset, metric series (key ->
    points by step) and the versions registered from it."""

    dataset: DatasetOut | None
    series: dict[str, list[PointOut]]
    versions: list[RunVersionOut]


class RunComparison(BaseModel):
    """Runs side by side: ``sections`` (section -> field -> one value per run, in the order of
    ``runs``), ``differs`` (``section.field`` of each field whose values differ), ``series``
    (metric key -> per run its points, null where a run has none)."""

    runs: list[str]
    sections: dict[str, dict[str, list[Any]]]
    differs: list[str]
    series: dict[str, list[list[PointOut] | None]]


@router.get("/runs", summary="List runs: filter, sort")
def list_runs(
    registry: Reg,
    model: Annotated[str | None, Query(pattern=MODEL_PATTERN)] = None,
    status: Literal["running", "finished", "failed", "killed"] | None = None,
    trigger: Annotated[str | None, Query(max_length=64, description="trigger kind")] = None,
    tag: Annotated[
        list[str], Query(max_length=512, description="KEY or KEY=VALUE; repeat for several")
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    metric: Annotated[
        list[str], Query(max_length=512, description="a condition such as roc_auc>=0.8")
    ] = [],  # noqa: B006
    sort: Annotated[str, Query(max_length=300)] = "started_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> RunList:
    """Runs passing every filter, sorted by ``sort`` (started_at, ended_at, duration, status,
    model, id, metrics.NAME, params.NAME, tags.NAME; runs without the value last)."""
    flt = RunFilter(
        model=model,
        status=status,
        trigger=trigger,
        tags=tuple(parse_tag(t) for t in tag),
        metrics=tuple(parse_condition(m) for m in metric),
    )
    found = find_runs(registry, flt, check_sort(sort), order == "desc", limit)
    return RunList(items=[RunOut.model_validate(r.to_dict()) for r in found])


@router.get("/runs/compare", summary="Compare runs side by side")
def compare_runs(
    registry: Reg,
    ids: Annotated[str, Query(max_length=2000, description="run ids, comma-separated (2+)")],
) -> RunComparison:
    """Params, metrics, seeds, code, environment, dataset, trigger and tags of the runs side
    by side, the fields that differ, and their metric series."""
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    cmp = run_comparison(registry, wanted)
    series = registry.metric_series(cmp.runs)
    keys = sorted({k for s in series.values() for k in s})
    by_key: dict[str, list[list[PointOut] | None]] = {
        k: [
            None
            if k not in series.get(r, {})
            else [PointOut.model_validate(p.to_dict()) for p in series[r][k]]
            for r in cmp.runs
        ]
        for k in keys
    }
    return RunComparison.model_validate({**cmp.to_dict(), "series": by_key})


@router.get("/runs/{run_id}", summary="Get a run with its series")
def show_run(registry: Reg, run_id: Annotated[str, Path(pattern=RUN_ID)]) -> RunDetail:
    """One run (by id or a unique prefix of 6+ characters) with its dataset, metric series and
    the versions registered from it."""
    detail = run_detail(registry, resolve_run_id(registry, run_id))
    return RunDetail.model_validate({**detail.pop("run"), **detail})
