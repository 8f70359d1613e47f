"""Gauges of the daemon's live state: pending joins, source lag and checkpoint age."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftd.daemon.abc import Lag
from driftd.daemon.metrics.kinds import LIVE, PROCESS_LOCAL, RESTORED, help_text
from driftd.daemon.pipeline import Pipeline


class StateCollector(Collector):
    """Pending joins, source lag and checkpoint age, read at scrape time.

    ``last_checkpoint`` is the wall time of the oldest state this process holds: its last
    save, or the checkpoints it restored at start. Until there is one (a first start), the age
    counts from ``started_at``, so an alert on it fires when no checkpoint is ever saved. A
    process that holds no partition (an idle Kafka group member) has nothing to save: no sample.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        lag: Callable[[], Lag],
        last_checkpoint: Callable[[], float | None],
        started_at: float | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.lag = lag
        self.last_checkpoint = last_checkpoint
        self.started_at = time.time() if started_at is None else started_at

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "driftd_join_pending",
                help_text("Predictions waiting for their label.", "predictions", RESTORED),
                labels=["model"],
            ),
            GaugeMetricFamily(
                "driftd_join_pending_labels",
                help_text("Labels waiting for their prediction.", "labels", RESTORED),
                labels=["model"],
            ),
            GaugeMetricFamily(
                "driftd_consumer_lag",
                help_text(
                    "Kafka messages not yet read, per assigned topic partition (the broker's "
                    "high watermark minus this consumer's position).",
                    "messages",
                    LIVE,
                ),
                labels=["topic", "partition"],
            ),
            GaugeMetricFamily(
                "driftd_file_source_remaining_bytes",
                help_text(
                    "Bytes a file source has not read yet in the plain file it reads (no sample "
                    "while no file is open, nor for gzip, whose size is unknown).",
                    "bytes",
                    LIVE,
                ),
            ),
            GaugeMetricFamily(
                "driftd_checkpoint_age_seconds",
                help_text(
                    "Time since the last checkpoint this process saved or restored at start; "
                    "no sample while it holds no partition.",
                    "seconds",
                    " After a restart it counts from the restored checkpoint's save time; "
                    f"{PROCESS_LOCAL} while there is none.",
                ),
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """The gauges, without samples."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges."""
        pending, waiting, lag, remaining, age = self._families()
        parts = self.pipeline.counts()
        totals: dict[str, list[int]] = {}
        for st in parts:
            for name, m in st.models.items():
                t = totals.setdefault(name, [0, 0])
                t[0] += m.pending
                t[1] += m.pending_labels
        for name, (p, w) in sorted(totals.items()):
            pending.add_metric([name], p)
            waiting.add_metric([name], w)
        behind = self.lag()
        for (topic, partition), n in sorted(behind.messages.items()):
            lag.add_metric([topic, str(partition)], n)
        if behind.remaining_bytes is not None:
            remaining.add_metric([], behind.remaining_bytes)
        last = self.last_checkpoint()
        if parts:
            since = self.started_at if last is None else last
            age.add_metric([], max(time.time() - since, 0.0))
        yield from (pending, waiting, lag, remaining, age)
