"""Request and response bodies of the registry API, as pydantic models.

Field constraints mirror the registry's rules and the columns' sizes, so bad input is answered
with a 422 that names the field and what was expected, never a database error (a 500).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from driftd.registry.names import Stage

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"
ALIAS_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"


def plain_text(value: str) -> str:
    """Refuse NUL and lone surrogates: PostgreSQL cannot store them, JSON cannot encode them."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        plain_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -(2**63) <= value <= INT64_MAX:
            raise ValueError("integers must fit in 64 bits (store larger numbers as strings)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            plain_text(str(key))
            _check_json(item, depth + 1)
    else:  # pragma: no cover - json.loads yields nothing else
        raise ValueError(f"unsupported JSON value of type {type(value).__name__}")


def json_object(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON object the database and the audit chain can store as is."""
    _check_json(value, 0)
    return value


LongText = Annotated[str, Field(max_length=10_000), AfterValidator(plain_text)]
Reason = Annotated[str, Field(min_length=1, max_length=10_000), AfterValidator(plain_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(json_object)]
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
Alias = Annotated[str, Field(pattern=ALIAS_PATTERN)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterVersion(_Body):
    """A new model version; mirrors ``Registry.register_version``."""

    artifact_uri: Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(plain_text)]
    artifact_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the artifact: 64 lowercase hex digits"
    )
    artifact_size: Annotated[int, Field(ge=0, le=INT64_MAX)]
    framework: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(plain_text)] = (
        "torch"
    )
    signature: JsonObject = Field(default_factory=dict)
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    parent_version: Version | None = None
    evaluation: JsonObject | None = None
    description: LongText = ""
    stage: Stage = Stage.DEVELOPMENT
    aliases: Annotated[list[Alias], Field(max_length=32)] = Field(default_factory=list)
    reason: LongText = ""


class ApproveBody(_Body):
    """An approval of a version for a target stage; the role comes from the token."""

    stage: Stage
    comment: LongText = ""


class ApprovalRequestBody(_Body):
    """Ask for approvals of a version for a target stage."""

    stage: Stage
    reason: LongText = ""


class PromoteBody(_Body):
    """Move a version to ``stage``; ``expected_stage`` guards against a stale view (409)."""

    stage: Stage
    reason: LongText = ""
    expected_stage: Stage | None = None


class SetAliasBody(_Body):
    """Point a free alias at a version."""

    version: Version
    reason: LongText = ""


class RollbackBody(_Body):
    """Take the canary (or champion) out of service."""

    reason: Reason
    version: Version | None = None
    evidence: JsonObject | None = None


# Response bodies: the ones marked below repeat a registry record's fields, because FastAPI
# documents and checks answers by pydantic models; tests/api/test_schemas_mirror_records.py
# keeps each equal to its record (names and types).


class ErrorOut(BaseModel):
    """Every error answer: the error's class name and a message that says what to fix."""

    error: str
    detail: str


# The fields of driftd.registry.records.ModelInfo, as the API shows them.
class ModelOut(BaseModel):
    """A registered model and its current aliases."""

    name: str
    description: str
    created_at: float
    created_by: str
    latest_version: int | None
    aliases: dict[str, int]


class ModelPage(BaseModel):
    """One page of models; pass ``next_after`` as ``after`` for the next (null: no more)."""

    items: list[ModelOut]
    next_after: str | None


# The fields of driftd.registry.records.VersionInfo, as the API shows them.
class VersionOut(BaseModel):
    """One model version as stored, with the aliases that point at it."""

    model: str
    version: int
    stage: str
    artifact_uri: str
    artifact_sha256: str
    artifact_size: int
    framework: str
    signature: dict[str, Any]
    run_id: str | None
    parent_version: int | None
    evaluation: dict[str, Any] | None
    description: str
    created_at: float
    created_by: str
    row_version: int
    aliases: list[str]


class VersionPage(BaseModel):
    """One page of versions, newest first; pass ``next_before`` as ``before`` for the next."""

    items: list[VersionOut]
    next_before: int | None


# The fields of driftd.registry.records.HistoryEntry, as the API shows them.
class HistoryOut(BaseModel):
    """One alias move or stage change, with the interval it held."""

    kind: str
    name: str
    version: int
    valid_from: float
    valid_to: float | None
    actor: str
    reason: str


# The fields of driftd.registry.records.ApprovalInfo, as the API shows them.
class ApprovalOut(BaseModel):
    """One approval of a version for a target stage."""

    version: int
    stage: str
    approver: str
    role: str
    comment: str
    created_at: float


# The fields of driftd.registry.records.RunInfo, as the API shows them.
class RunOut(BaseModel):
    """A training run."""

    id: str
    model: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    tags: dict[str, Any]
    seeds: dict[str, Any]
    code: dict[str, Any]
    environment: dict[str, Any]
    dataset_id: int | None
    trigger: dict[str, Any] | None
    started_at: float
    ended_at: float | None
    created_by: str


# The fields of driftd.registry.records.DatasetInfo, as the API shows them.
class DatasetOut(BaseModel):
    """A dataset snapshot, identified by the SHA-256 of its content."""

    id: int
    sha256: str
    row_count: int
    window_start: float | None
    window_end: float | None
    source_offsets: dict[str, Any]
    schema_: dict[str, Any] = Field(alias="schema")
    uri: str
    created_at: float
    created_by: str

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


# The fields of driftd.registry.audit.AuditRecord, as the API shows them.
class AuditOut(BaseModel):
    """One audit record (``old`` and ``new`` are canonical JSON text, as hashed)."""

    seq: int
    ts: float
    actor: str
    action: str
    subject: str
    old: str
    new: str
    reason: str
    request_id: str
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """One page of audit records; pass ``next_after`` as ``after`` for the next."""

    items: list[AuditOut]
    next_after: int | None


# The fields of driftd.registry.audit.VerifyResult, as the API shows them.
class VerifyOut(BaseModel):
    """The outcome of walking the audit chain; ``problem`` names the first bad record."""

    ok: bool
    records: int
    head_seq: int
    problem: str
    seq: int | None


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    detail: str = ""
