"""Every registry test runs on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from tests.databases import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    """A registry on a migrated, empty database, keyed with a test secret."""
    engine = make_engine(db_url)
    upgrade(engine)
    reg = Registry(engine, secret=b"test-secret")
    yield reg
    engine.dispose()
