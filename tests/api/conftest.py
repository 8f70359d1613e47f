"""API tests run on SQLite and on the real PostgreSQL server, like every registry test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from driftd.api import create_app
from driftd.registry import Registry
from driftd.registry.tokens import create_token


@dataclass(frozen=True)
class Tokens:
    """One token per role, a second approver, and a revoked one."""

    viewer: str
    approver: str
    approver2: str
    admin: str
    revoked: str


@pytest.fixture
def tokens(registry: Registry) -> Tokens:
    """Tokens as ``driftd token create`` makes them."""
    from driftd.registry.tokens import revoke_token

    revoked = create_token(registry, "gone", "admin", actor="root")
    revoke_token(registry, revoked.split("_")[1], actor="root")
    return Tokens(
        viewer=create_token(registry, "vera", "viewer", actor="root"),
        approver=create_token(registry, "ann", "approver", actor="root"),
        approver2=create_token(registry, "bob", "approver", actor="root"),
        admin=create_token(registry, "ada", "admin", actor="root"),
        revoked=revoked,
    )


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    """A client of the API over ``registry``."""
    with TestClient(create_app(registry)) as c:
        yield c
