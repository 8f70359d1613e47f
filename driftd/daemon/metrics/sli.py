"""Per model, version and partition SLIs for Prometheus, read at scrape time from the pipeline's
per-version counts: predictions, errors, latency, labeled and correct rows, squared errors
(regression) and lifetime quality.

The counts are pipeline state, checkpointed with the offsets, so the counters survive a restart
(no reset to zero) and never count a replayed event twice. Each series is one partition's (a
``partition`` label): a partition that moves to another instance takes its series along, so a
sum over instances has no reset and no jump at a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from driftd.daemon.metrics.checkpointed import PARTITION
from driftd.daemon.metrics.kinds import RESTORED, help_text
from driftd.daemon.pipeline import Pipeline
from driftd.rollout.counts import PROMETHEUS_BUCKETS_S, Totals, totals

_MV = ["model", "version"]
_MVP = [*_MV, PARTITION]


class SliCollector(Collector):
    """Per-version SLIs from the pipeline's counts, a series per partition held."""

    def __init__(self, pipeline: Pipeline, tasks: dict[str, str]) -> None:
        self.pipeline = pipeline
        self.tasks = tasks  # model -> task: what quality means

    def _totals(self) -> list[tuple[str, str, str, Totals]]:
        """(model, version, partition, that partition's counts of the version), in order."""
        out: list[tuple[str, str, str, Totals]] = []
        for part, st in sorted(list(self.pipeline.partitions.items())):
            for model in sorted(self.tasks):
                ms = st.models.get(model)
                if ms is None:
                    continue
                vc = ms.version_counts
                out.extend((model, v, str(part), totals([vc], v)) for v in sorted(list(vc.counts)))
        return out

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        HistogramMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            CounterMetricFamily(
                "driftd_predictions",
                help_text("Predictions served.", "predictions", RESTORED),
                labels=_MVP,
            ),
            CounterMetricFamily(
                "driftd_prediction_errors",
                help_text("Predictions the server reported as errors.", "predictions", RESTORED),
                labels=_MVP,
            ),
            CounterMetricFamily(
                "driftd_labeled",
                help_text("Predictions joined with their label.", "predictions", RESTORED),
                labels=_MVP,
            ),
            CounterMetricFamily(
                "driftd_correct",
                help_text(
                    "Joined predictions that matched their label (classification).",
                    "predictions",
                    RESTORED,
                ),
                labels=_MVP,
            ),
            CounterMetricFamily(
                "driftd_squared_error",
                help_text(
                    "Sum of (prediction - label)^2 over joined predictions (regression): "
                    "rmse over a window is sqrt(rate(driftd_squared_error_total) / "
                    "rate(driftd_labeled_total)).",
                    "squared label units",
                    RESTORED,
                ),
                labels=_MVP,
            ),
            HistogramMetricFamily(
                "driftd_prediction_latency_seconds",
                help_text("Model server latency.", "seconds", RESTORED),
                labels=_MVP,
            ),
            GaugeMetricFamily(
                "driftd_model_quality",
                help_text(
                    "Lifetime quality: over every joined label of the partition since its first "
                    "(accuracy, or rmse for regression); it moves slowly by design. For a window, "
                    "use the counters: rate(driftd_correct_total) / rate(driftd_labeled_total), "
                    "or driftd_squared_error_total for rmse.",
                    "ratio (accuracy) or label units (rmse)",
                    RESTORED,
                ),
                labels=[*_MVP, "metric"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """The SLI families, without samples."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """The SLI families, from the counts so far."""
        preds, errs, labeled, correct, squared, lat, quality = self._families()
        for model, version, part, tot in self._totals():
            req, err, nl, nc, sq, lsum_ms = tot.counts.tolist()
            labels = [model, version, part]
            preds.add_metric(labels, req)
            errs.add_metric(labels, err)
            labeled.add_metric(labels, nl)
            correct.add_metric(labels, nc)
            if self.tasks.get(model) == "regression":
                squared.add_metric(labels, sq)
            buckets = [(str(b), tot.at_most(b * 1000.0)) for b in PROMETHEUS_BUCKETS_S]
            buckets.append(("+Inf", float(tot.latency.sum())))
            lat.add_metric(labels, buckets, lsum_ms / 1000.0)
            if nl:
                if self.tasks.get(model) == "regression":
                    quality.add_metric([*labels, "rmse"], float(np.sqrt(sq / nl)))
                else:
                    quality.add_metric([*labels, "accuracy"], nc / nl)
        yield from (preds, errs, labeled, correct, squared, lat, quality)
