"""Counters kept in the checkpoint, read from the pipeline's partition state at scrape time.

Events consumed, decoded, dead-lettered and ignored, join outcomes, drift alarms and each
detector's statistic at its last alarm are pipeline state, saved with the offsets they
correspond to: after a restart they continue from the checkpoint instead of restarting at 0,
and a replay after a crash never counts an event twice. A partition that moves to another
instance takes its counts along (this instance's counters drop, which Prometheus reads as a
reset).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from driftd.contracts.events import DEAD_LETTER_REASONS
from driftd.daemon.alarm_log import merged
from driftd.daemon.join import JOIN_COUNTERS
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.state import PartitionState

IGNORED_REASONS = ("unknown_model", "oversized", "unknown_feature")
"""Why the pipeline ignores an event (or part of one): the keys of ``Outcome.ignored``."""
NOT_WHOLE_EVENTS = frozenset({"unknown_feature"})  # parts of events that still decoded
RESTORED = " Kept in the checkpoint: continues across restarts."


class CheckpointedCollector(Collector):
    """Event, join and alarm counters summed over this instance's partitions."""

    def __init__(self, pipeline: Pipeline | None, models: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.models = sorted(models)  # every model's join counters exist at 0

    def collect(self) -> Iterator[Any]:
        """The counter families, and the drift statistic and threshold gauges."""
        parts = list(self.pipeline.partitions.values()) if self.pipeline is not None else []
        consumed = 0
        dead: Counter[str] = Counter(dict.fromkeys(DEAD_LETTER_REASONS, 0))
        ignored: Counter[str] = Counter(dict.fromkeys(IGNORED_REASONS, 0))
        join: dict[str, Counter[str]] = {
            m: Counter(dict.fromkeys(JOIN_COUNTERS, 0)) for m in self.models
        }
        schemas = self.pipeline.schemas if self.pipeline is not None else {}
        missing: Counter[tuple[str, str]] = Counter(
            {(name, f): 0 for name, s in schemas.items() for f in s.settings.features}
        )
        for st in parts:
            consumed += st.consumed
            dead.update(dict(st.dead_lettered))
            ignored.update(dict(st.ignored))
            for name, m in list(st.models.items()):
                join.setdefault(name, Counter()).update(dict(m.store.counts))
                missing.update({(name, f): n for f, n in list(m.missing.items())})
        decoded = (
            consumed
            - sum(dead.values())
            - sum(n for k, n in ignored.items() if k not in NOT_WHOLE_EVENTS)
        )
        yield _counter("driftd_events_consumed", "Raw events read from the sources.", consumed)
        yield _counter("driftd_events_decoded", "Events that decoded and validated.", decoded)
        yield _labeled(
            "driftd_events_dead_lettered", "Events sent to the dead-letter sink.", "reason", dead
        )
        yield _labeled(
            "driftd_events_ignored", "Events (or parts) ignored by policy.", "reason", ignored
        )
        joins = CounterMetricFamily(
            "driftd_join_events",
            "Join outcomes: predictions, labels, joined, expired, duplicates, "
            "unmatched_labels, evicted, dropped." + RESTORED,
            labels=["model", "outcome"],
        )
        for model, counts in sorted(join.items()):
            for outcome, n in sorted(counts.items()):
                joins.add_metric([model, outcome], n)
        yield joins
        gaps = CounterMetricFamily(
            "driftd_feature_missing",
            "Predictions accepted without a declared feature (absent or null), per model and "
            "feature: a data-quality signal." + RESTORED,
            labels=["model", "feature"],
        )
        for key, n in sorted(missing.items()):
            gaps.add_metric(list(key), n)
        yield gaps
        yield from self._alarms(parts)

    @staticmethod
    def _alarms(parts: list[PartitionState]) -> Iterator[Any]:
        alarms = merged(m.alarms for st in parts for m in list(st.models.values()))
        total = CounterMetricFamily(
            "driftd_drift_alarms",
            "Streaming detector alarms, per model version, stream and detector." + RESTORED,
            labels=["model", "version", "stream", "detector", "kind"],
        )
        for tkey, n in sorted(alarms.totals.items()):
            total.add_metric(list(tkey), n)
        keys = ["model", "version", "stream", "detector"]
        stat = GaugeMetricFamily(
            "driftd_drift_statistic",
            "A drift detector's statistic at its last alarm." + RESTORED,
            labels=keys,
        )
        thr = GaugeMetricFamily(
            "driftd_drift_threshold",
            "The threshold that statistic was compared with." + RESTORED,
            labels=keys,
        )
        for key, a in sorted(alarms.last.items()):
            stat.add_metric(list(key), a.statistic)
            thr.add_metric(list(key), a.threshold)
        yield from (total, stat, thr)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc + RESTORED, value=value)


def _labeled(name: str, doc: str, label: str, counts: Counter[str]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc + RESTORED, labels=[label])
    for key, n in sorted(counts.items()):
        fam.add_metric([key], n)
    return fam
