"""Counters kept in the checkpoint, read from the pipeline's partition state at scrape time.

Events consumed, decoded, dead-lettered and ignored, join outcomes, drift alarms and each
detector's statistic at its last alarm are pipeline state, saved with the offsets they
correspond to: after a restart they continue from the checkpoint instead of restarting at 0,
and a replay after a crash never counts an event twice.

The partition-level families carry a ``partition`` label: one series per partition this
instance holds, with that partition's own count. A partition that moves to another instance
takes its count along: its series ends here and continues on the other instance (a new
``instance`` label), so ``sum by (...) (rate(...))`` over instances shows no reset and no jump
at a rebalance. The alarm families are the leader's decisions, not partition state: no
``partition`` label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftd.contracts.events import DEAD_LETTER_REASONS
from driftd.daemon.alarm_log import Alarms
from driftd.daemon.join import JOIN_COUNTERS
from driftd.daemon.metrics.kinds import RESTORED, help_text
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.state import PartitionCounts

PARTITION = "partition"
"""The label of every partition-level family: the partition number the series counts."""
IGNORED_REASONS = ("unknown_model", "oversized", "unknown_feature")
"""Why the pipeline ignores an event (or part of one): the keys of ``ChunkOutcome.ignored``."""
NOT_WHOLE_EVENTS = frozenset({"unknown_feature"})  # parts of events that still decoded
_ALARM_KEYS = ["model", "version", "stream", "detector"]


class CheckpointedCollector(Collector):
    """Event and join counters per partition this instance holds, and the alarm families."""

    def __init__(
        self,
        pipeline: Pipeline,
        models: Sequence[str],
        alarms: Callable[[], Alarms] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.models = sorted(models)  # every model's join counters exist at 0, per partition
        self.alarms = alarms or pipeline.alarms  # the leader's, in the daemon

    @staticmethod
    def _count_families() -> tuple[CounterMetricFamily, ...]:
        return (
            CounterMetricFamily(
                "driftd_events_consumed",
                help_text("Raw events read from the sources, per partition.", "events", RESTORED),
                labels=[PARTITION],
            ),
            CounterMetricFamily(
                "driftd_events_decoded",
                help_text("Events that decoded and validated, per partition.", "events", RESTORED),
                labels=[PARTITION],
            ),
            CounterMetricFamily(
                "driftd_events_dead_lettered",
                help_text(
                    "Events sent to the dead-letter sink, per partition.", "events", RESTORED
                ),
                labels=["reason", PARTITION],
            ),
            CounterMetricFamily(
                "driftd_events_ignored",
                help_text(
                    "Events (or parts) ignored by policy, per partition.", "events", RESTORED
                ),
                labels=["reason", PARTITION],
            ),
            CounterMetricFamily(
                "driftd_join_events",
                help_text(
                    "Join outcomes: predictions, labels, joined, expired, duplicates, "
                    "unmatched_labels, evicted, dropped; per partition.",
                    "events",
                    RESTORED,
                ),
                labels=["model", "outcome", PARTITION],
            ),
            CounterMetricFamily(
                "driftd_feature_missing",
                help_text(
                    "Predictions accepted without a declared feature (absent or null), per "
                    "model, feature and partition: a data-quality signal.",
                    "predictions",
                    RESTORED,
                ),
                labels=["model", "feature", PARTITION],
            ),
        )

    @staticmethod
    def _alarm_families() -> tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "driftd_drift_alarms",
                help_text(
                    "Streaming detector alarms, per model version, stream and detector.",
                    "alarms",
                    RESTORED,
                ),
                labels=[*_ALARM_KEYS, "kind"],
            ),
            GaugeMetricFamily(
                "driftd_drift_statistic",
                help_text(
                    "A drift detector's statistic at its last alarm.",
                    "detector statistic",
                    RESTORED,
                ),
                labels=_ALARM_KEYS,
            ),
            GaugeMetricFamily(
                "driftd_drift_threshold",
                help_text(
                    "The threshold that statistic was compared with.",
                    "detector statistic",
                    RESTORED,
                ),
                labels=_ALARM_KEYS,
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """The families, without samples."""
        yield from self._count_families()
        yield from self._alarm_families()

    def collect(self) -> Iterator[Metric]:
        """The counter families (a series per held partition), and the alarm families."""
        p = self.pipeline
        fams = self._count_families()
        consumed, decoded, dead_fam, ignored_fam, joins, gaps = fams
        features = p.features()
        for st in sorted(p.counts(), key=lambda c: c.partition):
            part = str(st.partition)
            dead, ignored, join, missing = self._counts(st, features)
            not_events = sum(n for k, n in ignored.items() if k not in NOT_WHOLE_EVENTS)
            consumed.add_metric([part], st.consumed)
            decoded.add_metric([part], st.consumed - sum(dead.values()) - not_events)
            for fam, counts in ((dead_fam, dead), (ignored_fam, ignored)):
                for key, n in sorted(counts.items()):
                    fam.add_metric([key, part], n)
            for model, outcomes in sorted(join.items()):
                for outcome, n in sorted(outcomes.items()):
                    joins.add_metric([model, outcome, part], n)
            for (model, feature), n in sorted(missing.items()):
                gaps.add_metric([model, feature, part], n)
        yield from fams
        total, stat, thr = self._alarm_families()
        alarms = self.alarms()
        for tkey, n in sorted(alarms.totals.items()):
            total.add_metric(list(tkey), n)
        for last_key, a in sorted(alarms.last.items()):
            stat.add_metric(list(last_key), a.statistic)
            thr.add_metric(list(last_key), a.threshold)
        yield from (total, stat, thr)

    def _counts(
        self, st: PartitionCounts, features: dict[str, list[str]]
    ) -> tuple[Counter[str], Counter[str], dict[str, Counter[str]], Counter[tuple[str, str]]]:
        """One partition's dead letters and ignored events by reason, join outcomes per
        model, and missing features per (model, feature); every known key at 0."""
        dead: Counter[str] = Counter(dict.fromkeys(DEAD_LETTER_REASONS, 0))
        ignored: Counter[str] = Counter(dict.fromkeys(IGNORED_REASONS, 0))
        join: dict[str, Counter[str]] = {
            m: Counter(dict.fromkeys(JOIN_COUNTERS, 0)) for m in self.models
        }
        missing: Counter[tuple[str, str]] = Counter(
            {(name, f): 0 for name, fs in features.items() for f in fs}
        )
        dead.update(st.dead_lettered)
        ignored.update(st.ignored)
        for name, m in st.models.items():
            join.setdefault(name, Counter()).update(m.join)
            missing.update({(name, f): n for f, n in m.missing.items()})
        return dead, ignored, join, missing
