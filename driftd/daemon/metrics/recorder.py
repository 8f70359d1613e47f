"""The recorder: the ingest path's own metrics on an injected CollectorRegistry.

It registers the collectors of what the checkpoint keeps (events, joins, alarms, per-version
SLIs), and counts what only this process sees: timings, checkpoint failures and file
rotations, from 0 at start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram

from driftd.daemon.alarm_log import Alarms
from driftd.daemon.metrics.checkpointed import CheckpointedCollector
from driftd.daemon.metrics.kinds import COUNTED_HERE, help_text
from driftd.daemon.metrics.sli import SliCollector
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.sources.file_identity import CHANGES

_BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Recorder:
    """Every metric driftd's ingest path exports, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        tasks: Mapping[str, str],
        pipeline: Pipeline,
        alarms: Callable[[], Alarms] | None = None,
    ) -> None:
        self.registry = registry
        registry.register(CheckpointedCollector(pipeline, list(tasks), alarms))
        registry.register(SliCollector(pipeline, dict(tasks)))
        self.batch_seconds = Histogram(
            "driftd_batch_processing_seconds",
            help_text("Time to process one chunk of events.", "seconds", COUNTED_HERE),
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "driftd_checkpoint_duration_seconds",
            help_text("Time to save a checkpoint.", "seconds", COUNTED_HERE),
            buckets=_CHECKPOINT_BUCKETS,
            registry=registry,
        )
        self.checkpoint_failures = Counter(
            "driftd_checkpoint_failures_total",
            help_text("Checkpoints that could not be saved.", "checkpoints", COUNTED_HERE),
            registry=registry,
        )
        self.source_rotations = Counter(
            "driftd_source_rotations_total",
            help_text(
                "Times a file source found its path naming a new file (rotated) or its file "
                "truncated (truncated).",
                "file changes",
                COUNTED_HERE,
            ),
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

    def observe(self, seconds: float) -> None:
        """Time one processed chunk (its counts are read from the pipeline's state)."""
        self.batch_seconds.observe(seconds)
