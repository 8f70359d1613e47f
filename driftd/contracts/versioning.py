"""One helper to check the kind and version of every persisted state blob."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftd.errors import StateVersionError


def require_state_version(obj: Any, kind: str, version: int) -> None:
    """Raise StateVersionError unless ``obj`` is a ``kind`` state of ``version``."""
    if not isinstance(obj, Mapping) or obj.get("kind") != kind:
        raise StateVersionError(f"expected a {kind!r} state blob, got {type(obj).__name__}")
    if obj.get("v") != version:
        raise StateVersionError(
            f"{kind} state has version {obj.get('v')!r}; this driftd reads version {version}"
        )
