"""Manual control of a model's rollout over HTTP: pause, resume, promote now, abort now.

Approver tokens or above; the token's name is the actor the audit log records; an
``Idempotency-Key`` header works as for every write. 409 when the model has no rollout in
progress, when the controller is carrying out a decision of its own (retry), or when the
production gate refuses a promote (its approvals are missing). Same semantics as ``driftd
rollout pause|resume|promote|abort`` (``driftd.rollout.manual``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from driftd.api.auth import approver
from driftd.api.reads import ERRORS, ModelName, Reg
from driftd.api.schemas import ErrorOut, plain_text
from driftd.api.writes import IdempotencyKey
from driftd.registry.tokens import Principal
from driftd.rollout.manual import control

Actor = Annotated[Principal, Depends(approver)]
Text = Annotated[str, Field(max_length=10_000), AfterValidator(plain_text)]

router = APIRouter(responses={**ERRORS, 409: {"model": ErrorOut}}, tags=["rollouts"])


class ControlBody(BaseModel):
    """Why (recorded in the audit log)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = ""


class ControlOut(BaseModel):
    """What the command did; ``changed`` is false for a pause of a paused rollout (or a resume
    of a running one). ``at``: Unix seconds."""

    command: str
    model: str
    rollout: str
    canary: int
    champion: int
    phase: str
    paused: bool
    changed: bool
    actor: str
    reason: str
    at: float


@router.post(
    "/models/{name}/rollout/{command}",
    summary="Pause, resume, promote or abort a model's rollout",
)
def rollout_control(
    registry: Reg,
    who: Actor,
    name: ModelName,
    command: Literal["pause", "resume", "promote", "abort"],
    body: ControlBody | None = None,
    key: IdempotencyKey = None,
) -> ControlOut:
    """``pause``: the controller takes no automatic step until ``resume`` (evidence still
    accrues); ``promote``: the canary to production now (the production gate applies);
    ``abort``: roll the canary back now (no gate)."""
    reason = body.reason if body is not None else ""
    result = control(registry, name, command, who.name, reason, request_id=key)
    return ControlOut(**result.to_dict())
