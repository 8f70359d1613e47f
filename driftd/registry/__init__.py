"""driftd's model registry: versions, runs, datasets, stages and aliases with their history,
approval gates, a hash-chained audit log, an outbox for webhooks, and lineage."""

from driftd.registry.audit import VerifyResult
from driftd.registry.errors import (
    Conflict,
    Forbidden,
    GateNotSatisfied,
    InvalidRequest,
    NotFound,
    RegistryError,
)
from driftd.registry.names import ModelRef, Stage, parse_ref
from driftd.registry.records import (
    ApprovalInfo,
    DatasetInfo,
    HistoryEntry,
    ModelInfo,
    RunInfo,
    VersionInfo,
)
from driftd.registry.registry import Registry
from driftd.registry.roles import Gate, Role

__all__ = [
    "ApprovalInfo",
    "Conflict",
    "DatasetInfo",
    "Forbidden",
    "Gate",
    "GateNotSatisfied",
    "HistoryEntry",
    "InvalidRequest",
    "ModelInfo",
    "ModelRef",
    "NotFound",
    "Registry",
    "RegistryError",
    "Role",
    "RunInfo",
    "Stage",
    "VerifyResult",
    "VersionInfo",
    "parse_ref",
]
