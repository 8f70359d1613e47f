"""Gauges of the daemon's live state: pending joins, consumer lag and checkpoint age."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftd.daemon.metrics.kinds import PROCESS_LOCAL
from driftd.daemon.pipeline import Pipeline


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

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "driftd_join_pending", "Predictions waiting for their label.", labels=["model"]
            ),
            GaugeMetricFamily(
                "driftd_join_pending_labels",
                "Labels waiting for their prediction.",
                labels=["model"],
            ),
            GaugeMetricFamily(
                "driftd_consumer_lag",
                "Events not yet read, per stream (topic[partition] or file).",
                labels=["stream"],
            ),
            GaugeMetricFamily(
                "driftd_checkpoint_age_seconds",
                "Seconds since the last checkpoint this process saved or restored at start; "
                f"{PROCESS_LOCAL} while there is none; no sample while it holds no partition.",
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """The gauges, without samples."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges."""
        pending, waiting, lag, age = self._families()
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
        yield pending
        yield waiting
        for stream, n in sorted(self.lag().items()):
            lag.add_metric([stream], n)
        yield lag
        last = self.last_checkpoint()
        if parts:
            since = self.started_at if last is None else last
            age.add_metric([], max(time.time() - since, 0.0))
        yield age
