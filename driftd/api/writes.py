"""Write endpoints of the registry API: register, approve, request approval, promote, set and
delete free aliases, roll back. Each needs an approver token or above; the token's name is the
actor of every audit record the write appends.

Every write accepts an ``Idempotency-Key`` header, passed to the registry as the request id:
repeating a request answers as the first time without repeating the change, and reusing a key
for a different request is a 409. Keys belong to the token's name (the actor): another caller's
request with the same key is a request of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import AfterValidator

from driftd.api.auth import approver
from driftd.api.reads import ERRORS, AliasName, ModelName, Reg, VersionNo, version_out
from driftd.api.schemas import (
    ApprovalRequestBody,
    ApproveBody,
    ErrorOut,
    PromoteBody,
    RegisterVersion,
    RollbackBody,
    SetAliasBody,
    VersionOut,
    plain_text,
)
from driftd.registry.tokens import Principal

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="1-255 visible ASCII characters; a repeated request is not repeated",
    ),
]
Actor = Annotated[Principal, Depends(approver)]

router = APIRouter(responses={**ERRORS, 409: {"model": ErrorOut}})


@router.post("/models/{name}/versions", status_code=201, summary="Register a version")
def register_version(
    registry: Reg, who: Actor, name: ModelName, body: RegisterVersion, key: IdempotencyKey = None
) -> VersionOut:
    """Register a new version (the model is created when new), optionally moving it to a stage
    (its gate applies) and pointing free aliases at it."""
    v = registry.register_version(
        name, actor=who.name, request_id=key, **body.model_dump(mode="python")
    )
    return version_out(v)


@router.post(
    "/models/{name}/versions/{version}/approvals", status_code=201, summary="Approve a version"
)
def approve(
    registry: Reg,
    who: Actor,
    name: ModelName,
    version: VersionNo,
    body: ApproveBody,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Record the token holder's approval of a version for a stage, with the token's role."""
    registry.approve(name, version, body.stage, who.name, who.role, body.comment, request_id=key)
    return {"model": name, "version": version, "stage": body.stage.value, "approver": who.name}


@router.post(
    "/models/{name}/versions/{version}/approval-requests",
    status_code=202,
    summary="Ask for approvals",
)
def request_approval(
    registry: Reg,
    who: Actor,
    name: ModelName,
    version: VersionNo,
    body: ApprovalRequestBody,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Announce that a version waits for approvals to enter a stage (a webhook event)."""
    registry.request_approval(name, version, body.stage, who.name, body.reason, request_id=key)
    return {"model": name, "version": version, "stage": body.stage.value}


@router.post("/models/{name}/versions/{version}/stage", summary="Promote a version")
def promote(
    registry: Reg,
    who: Actor,
    name: ModelName,
    version: VersionNo,
    body: PromoteBody,
    key: IdempotencyKey = None,
) -> VersionOut:
    """Move a version to a stage if the transition is legal and its gate is satisfied; 409 when
    ``expected_stage`` is stale, the gate is unmet or another version holds the canary."""
    v = registry.promote(
        name,
        version,
        body.stage,
        who.name,
        body.reason,
        expected_stage=body.expected_stage,
        request_id=key,
    )
    return version_out(v)


@router.put("/models/{name}/aliases/{alias}", summary="Point a free alias at a version")
def set_alias(
    registry: Reg,
    who: Actor,
    name: ModelName,
    alias: AliasName,
    body: SetAliasBody,
    key: IdempotencyKey = None,
) -> VersionOut:
    """Point a free alias (e.g. ``challenger``) at a version; ``champion`` and ``canary``
    follow their stages and move only by promotion (422 here)."""
    registry.set_alias(name, alias, body.version, who.name, body.reason, request_id=key)
    return version_out(registry.get_version(name, body.version))


@router.delete("/models/{name}/aliases/{alias}", status_code=204, summary="Remove a free alias")
def delete_alias(
    registry: Reg,
    who: Actor,
    name: ModelName,
    alias: AliasName,
    reason: Annotated[str, Query(max_length=10_000), AfterValidator(plain_text)] = "",
    key: IdempotencyKey = None,
) -> Response:
    """Remove a free alias; stage-bound aliases are refused (422)."""
    registry.delete_alias(name, alias, who.name, reason, request_id=key)
    return Response(status_code=204)


@router.post("/models/{name}/rollback", summary="Roll back the canary or champion")
def rollback(
    registry: Reg, who: Actor, name: ModelName, body: RollbackBody, key: IdempotencyKey = None
) -> VersionOut:
    """Take the canary (else the champion, or ``version``) out of service; answers with the
    version now serving. No gate applies."""
    v = registry.rollback(name, who.name, body.reason, body.version, body.evidence, request_id=key)
    return version_out(v)
