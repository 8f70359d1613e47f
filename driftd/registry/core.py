"""The registry's core, shared by each of its parts: the engine, the audit secret, the clock and
the artifact policy; the one way to write (an audited, idempotent transaction); and reading a
version back, which every write that answers with a version ends with."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import sqlalchemy as sa

from driftd.db import make_engine, require_current
from driftd.registry.artifacts import ArtifactPolicy
from driftd.registry.names import ModelRef, parse_ref
from driftd.registry.records import VersionInfo
from driftd.registry.rows import find_version, resolve_number, version_info
from driftd.registry.writer import Writer, transaction


class RegistryCore:
    """Engine, secret, clock and artifact policy; ``write``; ``resolve`` and ``get_version``."""

    def __init__(
        self,
        engine: sa.Engine,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        artifacts: ArtifactPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.secret = secret
        self.clock = clock
        # Which artifact URIs versions may name; the default checks their form only.
        self.artifacts = artifacts or ArtifactPolicy()

    @classmethod
    def open(
        cls,
        url: str,
        secret: str | bytes | None = None,
        artifacts: ArtifactPolicy | None = None,
    ) -> Self:
        """Connect to ``url``; refuse a database whose schema is not up to date."""
        engine = make_engine(url)
        require_current(engine)
        key = secret.encode() if isinstance(secret, str) else secret
        return cls(engine, key or None, artifacts=artifacts)

    def write(
        self,
        actor: str,
        action: str,
        payload: Mapping[str, Any],
        request_id: str | None,
        change: Callable[[Writer], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``change`` in one audited, idempotent write transaction (see ``writer``)."""
        answer, _ = transaction(
            self.engine, self.secret, self.clock, actor, action, payload, request_id, change
        )
        return answer

    def get_version(self, model: str, version: int) -> VersionInfo:
        """One version by number."""
        return self.resolve(ModelRef(model, version=version))

    def resolve(self, ref: str | ModelRef) -> VersionInfo:
        """The version a reference names: ``models:/m/3``, ``m@champion``, ``m`` (latest)."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        with self.engine.connect() as conn:
            model_id, number = resolve_number(conn, r)
            return version_info(conn, r.model, find_version(conn, model_id, r.model, number))
