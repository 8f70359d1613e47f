"""Checkpoint-stale alerts need ``driftd_checkpoint_age_seconds`` at once after a restart that
restored checkpoints, counting from their save time (the oldest one held), not from the new
process's start."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftd.config import PipelineSettings
from driftd.daemon.abc import Checkpoint, Lag
from driftd.daemon.checkpoint import MemoryCheckpointStore
from driftd.daemon.metrics import StateCollector
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.runner import Runner
from driftd.daemon.sinks import NullDeadLetterSink
from driftd.sim import synth
from tests.unit.test_pipeline import ListSource, process

NAME = PipelineSettings().name


def _age(registry: CollectorRegistry) -> float | None:
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        if fam.name == "driftd_checkpoint_age_seconds":
            return fam.samples[0].value if fam.samples else None
    raise AssertionError("the family is not exported")


def test_the_age_counts_from_the_oldest_restored_checkpoint_at_the_first_scrape(
    make_pipeline: Callable[..., Pipeline], synth_stream: synth.Stream
) -> None:
    # A previous process saved partition 0 an hour ago and partition 1 ten minutes ago.
    before = make_pipeline()
    process(before, synth_stream.lines[:300], part=0)
    process(before, synth_stream.lines[300:600], part=1)
    store = MemoryCheckpointStore()
    saved = {0: time.time() - 3600, 1: time.time() - 600}
    store.save(NAME, [Checkpoint(p, 1, {}, before.snapshot(p), at) for p, at in saved.items()])

    # A fresh process restores both; nothing is read or saved before the scrape.
    pipeline = make_pipeline()
    runner = Runner(pipeline, ListSource([]), NullDeadLetterSink(), store, PipelineSettings())
    registry = CollectorRegistry()
    started = time.time()
    registry.register(StateCollector(pipeline, Lag, lambda: runner.last_checkpoint_at, started))
    assert _age(registry) is None, "no partition held yet: nothing to be stale"
    runner.assign([0, 1])
    t0 = time.time()
    age = _age(registry)
    t1 = time.time()
    assert age is not None
    assert t0 - saved[0] <= age <= t1 - saved[0], (age, "not from the process start")
    assert age >= 3600 > t1 - started
