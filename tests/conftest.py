"""Shared fixtures: a small synthetic stream and pipelines configured for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from driftd.config import IngestSettings, JoinSettings, ModelSettings
from driftd.daemon.pipeline import Pipeline
from driftd.sim import synth

# Small enough for a chunk size of 1 to stay fast, with every kind of bad line mixed in.
# A low rate spreads it over 300 s of event time, so that predictions expire and labels go
# unmatched well before the end.
SYNTH_SPEC = synth.StreamSpec(
    events=1500, seed=11, n_features=4, rate_per_s=5.0, duplicate_rate=0.03, malformed_rate=0.03
)


def synth_models(spec: synth.StreamSpec) -> dict[str, ModelSettings]:
    """The model settings that ``synth.config_toml`` writes for ``spec``."""
    features = {f"f{j}": "numeric" for j in range(spec.n_features)}
    if spec.categorical:
        features |= dict.fromkeys(synth.CATEGORIES, "categorical")
    return {spec.model: ModelSettings(features=features, max_label_delay_s=spec.max_label_delay_s)}


@pytest.fixture(scope="session")
def synth_spec() -> synth.StreamSpec:
    return SYNTH_SPEC


@pytest.fixture(scope="session")
def synth_stream(synth_spec: synth.StreamSpec) -> synth.Stream:
    return synth.generate(synth_spec)


@pytest.fixture(scope="session")
def make_pipeline() -> Callable[..., Pipeline]:
    """A factory: ``make_pipeline(spec, **ingest_overrides)`` -> an empty Pipeline."""

    def make(spec: synth.StreamSpec = SYNTH_SPEC, **ingest: Any) -> Pipeline:
        return Pipeline(
            synth_models(spec),
            IngestSettings(max_event_bytes=synth.MAX_EVENT_BYTES, **ingest),
            JoinSettings(allowed_lateness_s=spec.allowed_lateness_s),
        )

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind: every registry test runs on SQLite and PostgreSQL."""
    from tests.databases import fresh_database

    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def registry(db_url: str) -> Iterator[Any]:
    """A registry on a migrated, empty database, keyed with a test secret."""
    from driftd.db import make_engine, upgrade
    from driftd.registry import Registry

    engine = make_engine(db_url)
    upgrade(engine)
    reg = Registry(engine, secret=b"test-secret")
    yield reg
    engine.dispose()
