"""driftd's own metrics: one recorder on an injected CollectorRegistry.

Every figure is either kept in the checkpoint or process-local, and says which in its help:
counts of what the pipeline did (events, joins, alarms, per-version SLIs) and the gauges of its
state are read from the partition state at scrape time, so they continue across a restart;
timings, checkpoint failures and file rotations are counted by this process, from 0 at start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftd.daemon.checkpointed_metrics import CheckpointedCollector
from driftd.daemon.pipeline import Outcome, Pipeline
from driftd.daemon.sli import SliCollector
from driftd.daemon.sources.file_identity import CHANGES

_BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PROCESS_LOCAL = "since the process started"
"""The phrase in the help of every process-local family (tests hold each family to one kind)."""


class Recorder:
    """Every metric driftd's ingest path exports, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        tasks: Mapping[str, str] | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.registry = registry
        registry.register(CheckpointedCollector(pipeline, list(tasks or {})))
        registry.register(SliCollector(pipeline, dict(tasks or {})))
        self.batch_seconds = Histogram(
            "driftd_batch_processing_seconds",
            f"Time to process one chunk of events, {PROCESS_LOCAL}.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "driftd_checkpoint_duration_seconds",
            f"Time to save a checkpoint, {PROCESS_LOCAL}.",
            buckets=_CHECKPOINT_BUCKETS,
            registry=registry,
        )
        self.checkpoint_failures = Counter(
            "driftd_checkpoint_failures_total",
            f"Checkpoints that could not be saved, {PROCESS_LOCAL}.",
            registry=registry,
        )
        self.source_rotations = Counter(
            "driftd_source_rotations_total",
            "Times a file source found its path naming a new file (rotated) or its file "
            f"truncated (truncated), {PROCESS_LOCAL}.",
            ["kind"],
            registry=registry,
        )
        # Every labeled counter exists at 0 from the start (Prometheus' advice), so a rate()
        # over it returns 0 rather than no data until the first event of its kind.
        for kind in CHANGES:
            self.source_rotations.labels(kind)

    def source_changed(self, kind: str) -> None:
        """Count a file source's rotation or truncation."""
        self.source_rotations.labels(kind).inc()

    def observe(self, out: Outcome, seconds: float) -> None:
        """Time one processed chunk (its counts are read from the pipeline's state)."""
        self.batch_seconds.observe(seconds)


class StateCollector(Collector):
    """Pending joins, consumer lag and checkpoint age, read at scrape time.

    ``last_checkpoint`` is the wall time of the oldest state this process holds: its last
    save, or the checkpoints it restored at start. Until there is one (a first start), the age
    counts from ``started_at``, so an alert on it fires when no checkpoint is ever saved. A
    process that holds no partition (an idle Kafka group member) has nothing to save: no sample.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        lag: Callable[[], Mapping[str, int]],
        last_checkpoint: Callable[[], float | None],
        started_at: float | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.lag = lag
        self.last_checkpoint = last_checkpoint
        self.started_at = time.time() if started_at is None else started_at

    def collect(self) -> Iterator[Any]:
        """Yield the gauges."""
        pending = GaugeMetricFamily(
            "driftd_join_pending", "Predictions waiting for their label.", labels=["model"]
        )
        waiting = GaugeMetricFamily(
            "driftd_join_pending_labels", "Labels waiting for their prediction.", labels=["model"]
        )
        totals: dict[str, list[int]] = {}
        for st in list(self.pipeline.partitions.values()):
            for name, m in st.models.items():
                t = totals.setdefault(name, [0, 0])
                t[0] += m.store.pending
                t[1] += m.store.pending_labels
        for name, (p, w) in sorted(totals.items()):
            pending.add_metric([name], p)
            waiting.add_metric([name], w)
        yield pending
        yield waiting
        lag = GaugeMetricFamily(
            "driftd_consumer_lag",
            "Events not yet read, per stream (topic[partition] or file).",
            labels=["stream"],
        )
        for stream, n in sorted(self.lag().items()):
            lag.add_metric([stream], n)
        yield lag
        last = self.last_checkpoint()
        age = GaugeMetricFamily(
            "driftd_checkpoint_age_seconds",
            "Seconds since the last checkpoint this process saved or restored at start; "
            f"{PROCESS_LOCAL} while there is none; no sample while it holds no partition.",
        )
        if self.pipeline.partitions:
            since = self.started_at if last is None else last
            age.add_metric([], max(time.time() - since, 0.0))
        yield age
