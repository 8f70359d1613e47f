"""driftd's own metrics: one recorder on an injected CollectorRegistry.

Counters are incremented once per batch from the pipeline's outcome; gauges that describe
state (pending joins, consumer lag, checkpoint age) are read by a collector at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftd.daemon.join import JOIN_COUNTERS
from driftd.daemon.pipeline import Outcome, Pipeline
from driftd.daemon.sli import SliCollector
from driftd.daemon.sources.file_identity import CHANGES
from driftd.events import DEAD_LETTER_REASONS

_BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
IGNORED_REASONS = ("unknown_model", "oversized", "unknown_feature")
"""Why the pipeline ignores an event (or part of one): the keys of ``Outcome.ignored``."""


class Recorder:
    """Every metric driftd's ingest path exports, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        tasks: Mapping[str, str] | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.registry = registry
        self.sli = SliCollector(pipeline, dict(tasks or {}))
        registry.register(self.sli)
        self.consumed = Counter(
            "driftd_events_consumed_total", "Raw events read from the sources.", registry=registry
        )
        self.decoded = Counter(
            "driftd_events_decoded_total", "Events that decoded and validated.", registry=registry
        )
        self.dead_lettered = Counter(
            "driftd_events_dead_lettered_total",
            "Events sent to the dead-letter sink.",
            ["reason"],
            registry=registry,
        )
        self.ignored = Counter(
            "driftd_events_ignored_total",
            "Events (or parts) ignored by policy.",
            ["reason"],
            registry=registry,
        )
        self.join = Counter(
            "driftd_join_events_total",
            "Join outcomes: predictions, labels, joined, expired, duplicates, "
            "unmatched_labels, evicted, dropped.",
            ["model", "outcome"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "driftd_batch_processing_seconds",
            "Time to process one chunk of events.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "driftd_checkpoint_duration_seconds",
            "Time to save a checkpoint.",
            buckets=_CHECKPOINT_BUCKETS,
            registry=registry,
        )
        self.alarms = Counter(
            "driftd_drift_alarms_total",
            "Streaming detector alarms, per model version, stream and detector.",
            ["model", "version", "stream", "detector", "kind"],
            registry=registry,
        )
        self.checkpoint_failures = Counter(
            "driftd_checkpoint_failures_total",
            "Checkpoints that could not be saved.",
            registry=registry,
        )
        self.source_rotations = Counter(
            "driftd_source_rotations_total",
            "Times a file source found its path naming a new file (rotated) or its file "
            "truncated (truncated), since the process started.",
            ["kind"],
            registry=registry,
        )
        for kind in CHANGES:
            self.source_rotations.labels(kind)
        # Every labeled counter exists at 0 from the start (Prometheus' advice), so a rate()
        # over it returns 0 rather than no data until the first event of its kind.
        for reason in DEAD_LETTER_REASONS:
            self.dead_lettered.labels(reason)
        for reason in IGNORED_REASONS:
            self.ignored.labels(reason)
        for model in sorted(tasks or {}):
            for outcome in JOIN_COUNTERS:
                self.join.labels(model, outcome)

    def source_changed(self, kind: str) -> None:
        """Count a file source's rotation or truncation."""
        self.source_rotations.labels(kind).inc()

    def observe(self, out: Outcome, seconds: float) -> None:
        """Count one processed chunk."""
        self.consumed.inc(out.consumed)
        self.decoded.inc(
            out.consumed
            - len(out.dead_letters)
            - sum(v for k, v in out.ignored.items() if k != "unknown_feature")
        )
        for d in out.dead_letters:
            self.dead_lettered.labels(d.reason).inc()
        for reason, n in out.ignored.items():
            self.ignored.labels(reason).inc(n)
        for model, deltas in out.join_deltas.items():
            for outcome, n in deltas.items():
                self.join.labels(model, outcome).inc(n)
        for a in out.alarms:
            self.alarms.labels(a.model, a.version, a.stream, a.detector, a.kind).inc()
        self.sli.observe(out.alarms)
        self.batch_seconds.observe(seconds)


class StateCollector(Collector):
    """Pending joins, consumer lag and checkpoint age, read at scrape time."""

    def __init__(
        self,
        pipeline: Pipeline,
        lag: Callable[[], Mapping[str, int]],
        last_checkpoint: Callable[[], float | None],
    ) -> None:
        self.pipeline = pipeline
        self.lag = lag
        self.last_checkpoint = last_checkpoint

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
            "driftd_checkpoint_age_seconds", "Seconds since the last successful checkpoint."
        )
        if last is not None:
            age.add_metric([], max(time.time() - last, 0.0))
        yield age
