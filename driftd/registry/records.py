"""The registry's read models: plain frozen records that the CLI, the API and callers share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class _Plain:
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True, slots=True)
class ModelInfo(_Plain):
    """A registered model and its current aliases."""

    name: str
    description: str
    created_at: float
    created_by: str
    latest_version: int | None
    aliases: dict[str, int]


@dataclass(frozen=True, slots=True)
class VersionInfo(_Plain):
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

    @property
    def uri(self) -> str:
        """``models:/name/N``."""
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True, slots=True)
class RunInfo(_Plain):
    """A training run: everything needed to rerun it from metadata alone."""

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


@dataclass(frozen=True, slots=True)
class DatasetInfo(_Plain):
    """A dataset snapshot, identified by the SHA-256 of its full content."""

    id: int
    sha256: str
    row_count: int
    window_start: float | None
    window_end: float | None
    source_offsets: dict[str, Any]
    schema: dict[str, Any]
    uri: str
    created_at: float
    created_by: str

    @property
    def short(self) -> str:
        """An 8-character digest, for display only."""
        return self.sha256[:8]


@dataclass(frozen=True, slots=True)
class HistoryEntry(_Plain):
    """One alias move or stage change, with the interval it held."""

    kind: str  # "alias" or "stage"
    name: str  # the alias or the stage
    version: int
    valid_from: float
    valid_to: float | None
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class ApprovalInfo(_Plain):
    """One approval of a version for a target stage."""

    version: int
    stage: str
    approver: str
    role: str
    comment: str
    created_at: float
