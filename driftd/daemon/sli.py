"""Per model and version SLIs for Prometheus, read at scrape time from the pipeline's
``VersionCounts`` monitors: predictions, errors, latency, labeled and correct rows, quality.

The counts are pipeline state, checkpointed with the offsets, so the counters survive a restart
(no reset to zero) and never count a replayed event twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from driftd.daemon.checkpointed_metrics import RESTORED
from driftd.daemon.pipeline import Pipeline
from driftd.rollout.counts import PROMETHEUS_BUCKETS_S, Totals, VersionCounts, totals


def version_counts(pipeline: Pipeline, model: str) -> list[VersionCounts]:
    """The model's ``VersionCounts`` monitor in every partition."""
    out: list[VersionCounts] = []
    for st in list(pipeline.partitions.values()):
        ms = st.models.get(model)
        if ms is not None:
            out.extend(m for m in ms.monitors if isinstance(m, VersionCounts))
    return out


class SliCollector(Collector):
    """Per-version SLIs from the pipeline's counts."""

    def __init__(self, pipeline: Pipeline | None, tasks: dict[str, str]) -> None:
        self.pipeline = pipeline
        self.tasks = tasks  # model -> task: what quality means

    def _totals(self) -> list[tuple[str, str, Totals]]:
        if self.pipeline is None:
            return []
        out: list[tuple[str, str, Totals]] = []
        for model in sorted(self.tasks):
            monitors = version_counts(self.pipeline, model)
            names = sorted({v for m in monitors for v in list(m.counts)})
            out.extend((model, v, totals(monitors, v)) for v in names)
        return out

    def collect(self) -> Iterator[Any]:
        """The SLI families, from the counts so far."""
        mv = ["model", "version"]
        preds = CounterMetricFamily(
            "driftd_predictions", "Predictions served." + RESTORED, labels=mv
        )
        errs = CounterMetricFamily(
            "driftd_prediction_errors",
            "Predictions the server reported as errors." + RESTORED,
            labels=mv,
        )
        labeled = CounterMetricFamily(
            "driftd_labeled", "Predictions joined with their label." + RESTORED, labels=mv
        )
        correct = CounterMetricFamily(
            "driftd_correct", "Joined predictions that matched their label." + RESTORED, labels=mv
        )
        lat = HistogramMetricFamily(
            "driftd_prediction_latency_seconds", "Model server latency." + RESTORED, labels=mv
        )
        quality = GaugeMetricFamily(
            "driftd_model_quality",
            "Quality over every joined label so far (accuracy, or rmse for regression)." + RESTORED,
            labels=[*mv, "metric"],
        )
        for model, version, tot in self._totals():
            req, err, nl, nc, sq, lsum_ms = tot.counts.tolist()
            labels = [model, version]
            preds.add_metric(labels, req)
            errs.add_metric(labels, err)
            labeled.add_metric(labels, nl)
            correct.add_metric(labels, nc)
            buckets = [(str(b), tot.at_most(b * 1000.0)) for b in PROMETHEUS_BUCKETS_S]
            buckets.append(("+Inf", float(tot.latency.sum())))
            lat.add_metric(labels, buckets, lsum_ms / 1000.0)
            if nl:
                if self.tasks.get(model) == "regression":
                    quality.add_metric([*labels, "rmse"], float(np.sqrt(sq / nl)))
                else:
                    quality.add_metric([*labels, "accuracy"], nc / nl)
        yield from (preds, errs, labeled, correct, lat, quality)
