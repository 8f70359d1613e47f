"""Read endpoints of the registry API: models, versions, aliases, history, approvals, lineage,
runs, datasets and the audit log. Every one needs a viewer token or above; ``/audit/verify``
walks the whole chain, so it is for admins only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator

from driftd.api.auth import admin, registry_of, viewer
from driftd.api.schemas import (
    ALIAS_PATTERN,
    INT32_MAX,
    INT64_MAX,
    MODEL_PATTERN,
    ApprovalOut,
    AuditOut,
    AuditPage,
    DatasetOut,
    ErrorOut,
    HistoryOut,
    ModelOut,
    ModelPage,
    VerifyOut,
    VersionOut,
    VersionPage,
    plain_text,
)
from driftd.registry import NotFound, Registry, Stage
from driftd.registry.audit import Witness
from driftd.registry.names import ModelRef
from driftd.registry.records import VersionInfo

ModelName = Annotated[
    str, Path(pattern=MODEL_PATTERN, description="model name: letters, digits, '.', '_', '-'")
]
VersionNo = Annotated[int, Path(ge=1, le=INT32_MAX, description="version number")]
AliasName = Annotated[
    str, Path(pattern=ALIAS_PATTERN, description="an alias, or 'latest' for the newest version")
]
Reg = Annotated[Registry, Depends(registry_of)]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 422)
}

router = APIRouter(dependencies=[Depends(viewer)], responses=ERRORS)


def version_out(v: VersionInfo) -> VersionOut:
    """The API form of a version."""
    return VersionOut.model_validate(v.to_dict())


def _latest_at(registry: Registry, name: str, at: float) -> VersionInfo:
    """The newest version that existed at time ``at``."""
    before: int | None = None
    while True:
        page = registry.list_versions(name, limit=1000, before=before)
        for v in page:
            if v.created_at <= at:
                return v
        if len(page) < 1000:
            raise NotFound(f"model {name!r} had no versions at {at}")
        before = page[-1].version


def _resolve(registry: Registry, name: str, alias: str, at: float | None) -> VersionInfo:
    """The version ``alias`` names now, or named at time ``at``."""
    is_latest = alias.lower() == "latest"
    if at is None:
        return registry.resolve(ModelRef(name, alias="latest" if is_latest else alias))
    registry.get_model(name)  # 404 for an unknown model
    if is_latest:
        return _latest_at(registry, name, at)
    number = registry.alias_at(name, alias, at)
    if number is None:
        raise NotFound(f"alias {alias!r} of {name!r} pointed at no version at {at}")
    return registry.get_version(name, number)


@router.get("/models", summary="List models by name")
def list_models(
    registry: Reg,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str, Query(max_length=255, description="the last name seen")] = "",
) -> ModelPage:
    """Models ordered by name, ``limit`` at a time after the name ``after``."""
    models = registry.list_models(limit=limit, after=after)
    items = [ModelOut.model_validate(m.to_dict()) for m in models]
    return ModelPage(items=items, next_after=items[-1].name if len(items) == limit else None)


@router.get("/models/{name}", summary="Get a model")
def get_model(registry: Reg, name: ModelName) -> ModelOut:
    """One model with its aliases."""
    return ModelOut.model_validate(registry.get_model(name).to_dict())


@router.get("/models/{name}/versions", summary="List versions, newest first")
def list_versions(
    registry: Reg,
    name: ModelName,
    stage: Stage | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> VersionPage:
    """Versions of a model, newest first, optionally in one stage."""
    found = registry.list_versions(name, stage=stage, limit=limit, before=before)
    items = [version_out(v) for v in found]
    return VersionPage(items=items, next_before=items[-1].version if len(items) == limit else None)


@router.get("/models/{name}/versions/{version}", summary="Get a version")
def get_version(registry: Reg, name: ModelName, version: VersionNo) -> VersionOut:
    """One version by number."""
    return version_out(registry.get_version(name, version))


@router.get("/models/{name}/aliases/{alias}", summary="Resolve an alias (now or at a time)")
def resolve_alias(
    registry: Reg,
    name: ModelName,
    alias: AliasName,
    at: Annotated[
        float | None,
        Query(ge=0, le=1e11, allow_inf_nan=False, description="unix time: the holder then"),
    ] = None,
) -> VersionOut:
    """The version an alias points at, or pointed at at time ``at``."""
    return version_out(_resolve(registry, name, alias, at))


@router.get("/models/{name}/history", summary="Alias moves and stage changes")
def history(
    registry: Reg,
    name: ModelName,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> list[HistoryOut]:
    """Every alias move and stage change of a model (or one version), oldest first."""
    return [HistoryOut.model_validate(h.to_dict()) for h in registry.history(name, version)]


@router.get("/models/{name}/versions/{version}/approvals", summary="Approvals of a version")
def approvals(registry: Reg, name: ModelName, version: VersionNo) -> list[ApprovalOut]:
    """The approvals recorded for one version."""
    return [ApprovalOut.model_validate(a.to_dict()) for a in registry.approvals(name, version)]


Depth = Annotated[int, Query(ge=0, le=50, description="parent levels to follow")]


@router.get("/models/{name}/versions/{version}/lineage", summary="Lineage of a version")
def lineage(registry: Reg, name: ModelName, version: VersionNo, depth: Depth = 5) -> dict[str, Any]:
    """Version → run → dataset → trigger → parent version, with approvals and history."""
    return registry.lineage(ModelRef(name, version=version), depth)


@router.get("/models/{name}/aliases/{alias}/lineage", summary="Lineage of an alias's version")
def lineage_by_alias(
    registry: Reg, name: ModelName, alias: AliasName, depth: Depth = 5
) -> dict[str, Any]:
    """The lineage of the version an alias points at now."""
    v = _resolve(registry, name, alias, None)
    return registry.lineage(ModelRef(name, version=v.version), depth)


@router.get("/datasets/{dataset_id}", summary="Get a dataset")
def get_dataset(registry: Reg, dataset_id: Annotated[int, Path(ge=1, le=INT32_MAX)]) -> DatasetOut:
    """One dataset snapshot by id."""
    return DatasetOut.model_validate(registry.get_dataset(dataset_id).to_dict())


@router.get("/audit", summary="Read the audit log")
def audit_log(
    registry: Reg,
    after: Annotated[int, Query(ge=0, le=INT64_MAX, description="the last seq seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    subject: Annotated[str | None, Query(max_length=512), AfterValidator(plain_text)] = None,
) -> AuditPage:
    """Audit records with ``seq > after``, oldest first, optionally about one subject."""
    records = registry.audit_log(after=after, limit=limit, subject=subject)
    items = [AuditOut.model_validate(r, from_attributes=True) for r in records]
    return AuditPage(items=items, next_after=items[-1].seq if len(items) == limit else None)


def _witness(value: str | None) -> str | None:
    if value is not None:
        Witness.parse(value)  # a ValueError naming the value and the form: 422
    return value


@router.get("/audit/verify", dependencies=[Depends(admin)], summary="Verify the audit chain")
def verify_audit(
    registry: Reg,
    expect_head: Annotated[
        str | None,
        Query(
            max_length=100,
            description="SEQ:HASH, a head a witness saw (an audit.head event's 'witness'): "
            "fail unless the log still holds record SEQ with that hash",
        ),
        AfterValidator(_witness),
    ] = None,
) -> VerifyOut:
    """Walk the whole chain; name the first altered, removed or inserted record, a moved head
    row, or a witnessed record that is gone."""
    witness = Witness.parse(expect_head) if expect_head is not None else None
    return VerifyOut.model_validate(registry.verify_audit(expect_head=witness).to_dict())
