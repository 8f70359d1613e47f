"""Per model and version SLIs for Prometheus, read at scrape time from the pipeline's
``VersionCounts`` monitors: predictions, errors, latency, labeled and correct rows, quality.

The counts are pipeline state, checkpointed with the offsets, so the counters survive a restart
(no reset to zero) and never count a replayed event twice. The last drift statistic per
detector comes from the alarms the recorder sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from driftd.daemon.abc import DriftDetected
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
    """Per-version SLIs from the pipeline's counts; drift statistics from alarms."""

    def __init__(self, pipeline: Pipeline | None, tasks: dict[str, str]) -> None:
        self.pipeline = pipeline
        self.tasks = tasks  # model -> task: what quality means
        self._drift: dict[tuple[str, str, str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def observe(self, alarms: Sequence[DriftDetected]) -> None:
        """Keep each detector's statistic and threshold at its last alarm."""
        with self._lock:
            for a in alarms:
                self._drift[(a.model, a.version, a.stream, a.detector)] = (
                    a.statistic,
                    a.threshold,
                )

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
        preds = CounterMetricFamily("driftd_predictions", "Predictions served.", labels=mv)
        errs = CounterMetricFamily(
            "driftd_prediction_errors", "Predictions the server reported as errors.", labels=mv
        )
        labeled = CounterMetricFamily(
            "driftd_labeled", "Predictions joined with their label.", labels=mv
        )
        correct = CounterMetricFamily(
            "driftd_correct", "Joined predictions that matched their label.", labels=mv
        )
        lat = HistogramMetricFamily(
            "driftd_prediction_latency_seconds", "Model server latency.", labels=mv
        )
        quality = GaugeMetricFamily(
            "driftd_model_quality",
            "Quality since start from joined labels (accuracy, or rmse for regression).",
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
        yield from (preds, errs, labeled, correct, lat, quality, *self._drift_families())

    def _drift_families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        keys = ["model", "version", "stream", "detector"]
        stat = GaugeMetricFamily(
            "driftd_drift_statistic", "A drift detector's statistic at its last alarm.", labels=keys
        )
        thr = GaugeMetricFamily(
            "driftd_drift_threshold", "The threshold that statistic was compared with.", labels=keys
        )
        with self._lock:
            drift = sorted(self._drift.items())
        for key, (s, th) in drift:
            stat.add_metric(list(key), s)
            thr.add_metric(list(key), th)
        return stat, thr
