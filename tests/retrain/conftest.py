"""Retrain tests that need a database run on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftd.db import make_engine, upgrade
from driftd.retrain.jobs import JobQueue
from tests.databases import fresh_database


class Clock:
    """A settable clock for the queue (seconds)."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, migrated to head."""
    with fresh_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(db_url: str, clock: Clock) -> Iterator[JobQueue]:
    """A job queue on a fresh database with a settable clock."""
    engine = make_engine(db_url)
    yield JobQueue(engine, clock)
    engine.dispose()
