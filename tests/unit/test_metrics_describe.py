"""Every collector of the daemon describes, without collecting, exactly the families it collects
(names, types and help), so a registry knows its names before the first scrape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from driftd.daemon.abc import Lag
from driftd.daemon.metrics.checkpointed import CheckpointedCollector
from driftd.daemon.metrics.registry import RegistryCollector
from driftd.daemon.metrics.sli import SliCollector
from driftd.daemon.metrics.state import StateCollector
from driftd.daemon.pipeline import Pipeline
from driftd.db import make_engine, upgrade
from driftd.sim import synth
from tests.unit.test_pipeline import process


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline], synth_stream: synth.Stream) -> Pipeline:
    p = make_pipeline()
    process(p, synth_stream.lines[:2000])
    return p


def _check(collector: Any, samples: bool = True) -> None:
    described = [(f.name, f.type, f.documentation, f.samples) for f in collector.describe()]
    collected = list(collector.collect())
    assert described == [(f.name, f.type, f.documentation, []) for f in collected]
    assert any(f.samples for f in collected) is samples


def test_checkpointed_collector_describes_what_it_collects(pipeline: Pipeline) -> None:
    _check(CheckpointedCollector(pipeline, [synth.MODEL]))


def test_sli_collector_describes_what_it_collects(pipeline: Pipeline) -> None:
    _check(SliCollector(pipeline, {synth.MODEL: "binary"}))


def test_state_collector_describes_what_it_collects(pipeline: Pipeline) -> None:
    _check(StateCollector(pipeline, lambda: Lag({("predictions", 0): 3}, 10), lambda: None))


def test_registry_collector_describes_what_it_collects(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/registry.db")
    upgrade(engine)
    try:
        _check(RegistryCollector(engine), samples=True)  # empty: the outbox gauges read 0
    finally:
        engine.dispose()
