"""The leader's Prometheus families: who leads, and what the merge of the partitions holds.

``driftd_leader`` is 1 on the instance that holds the lease and 0 on the others, so dashboards
read decision series (alarms, verdicts, the event clock) from the leader only
(``... * on(instance) group_left driftd_leader == 1`` or simply ``max``), while partition
series sum over every instance.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftd.daemon.leader import Leader
from driftd.daemon.metrics.kinds import COUNTED_HERE, LIVE, RESTORED, help_text


def _families() -> tuple[GaugeMetricFamily | CounterMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "driftd_leader",
            help_text(
                "1 on the instance that holds the leader lease (and takes the decisions), else 0.",
                "1 or 0",
                LIVE,
            ),
            labels=["pipeline"],
        ),
        GaugeMetricFamily(
            "driftd_leader_epoch",
            help_text(
                "The fencing epoch of the lease this instance holds (0 while it does not lead).",
                "epoch number",
                LIVE,
            ),
            labels=["pipeline"],
        ),
        GaugeMetricFamily(
            "driftd_leader_event_clock_seconds",
            help_text(
                "Event time up to which the leader has merged every partition (leader only).",
                "unix timestamp in seconds",
                RESTORED,
            ),
            labels=["pipeline"],
        ),
        GaugeMetricFamily(
            "driftd_leader_held_buckets",
            help_text(
                "Merged buckets waiting for the global watermark, over models (leader only).",
                "buckets",
                RESTORED,
            ),
            labels=["pipeline"],
        ),
        CounterMetricFamily(
            "driftd_leader_late_values",
            help_text(
                "Values that reached the leader after the watermark passed their bucket; they "
                "were merged into the next bucket (leader only).",
                "values",
                RESTORED,
            ),
            labels=["pipeline"],
        ),
        CounterMetricFamily(
            "driftd_check_segment_overflow_rows",
            help_text(
                "Rows of segments beyond a model's max_segments: the window checks test them in "
                "the pooled stream only (leader only).",
                "rows",
                RESTORED,
            ),
            labels=["pipeline", "model"],
        ),
        GaugeMetricFamily(
            "driftd_detector_statistic",
            help_text(
                "Each streaming detector's test statistic now, on the merged stream (leader only; "
                "NaN while it warms up).",
                "detector statistic",
                RESTORED,
            ),
            labels=["pipeline", "model", "version", "stream", "detector"],
        ),
        GaugeMetricFamily(
            "driftd_detector_threshold",
            help_text(
                "The threshold that statistic alarms at now (leader only).",
                "detector statistic",
                RESTORED,
            ),
            labels=["pipeline", "model", "version", "stream", "detector"],
        ),
        CounterMetricFamily(
            "driftd_leader_merges",
            help_text(
                "Merges of the partitions' reports by this instance.", "merges", COUNTED_HERE
            ),
            labels=["pipeline"],
        ),
        CounterMetricFamily(
            "driftd_leader_merge_seconds",
            help_text(
                "Time spent merging reports and running the decisions.", "seconds", COUNTED_HERE
            ),
            labels=["pipeline"],
        ),
        CounterMetricFamily(
            "driftd_leader_fenced_out",
            help_text(
                "Leader writes refused because the lease had moved to a newer epoch.",
                "writes",
                COUNTED_HERE,
            ),
            labels=["pipeline"],
        ),
        CounterMetricFamily(
            "driftd_lease_renewal_failures",
            help_text("Lease renewals that failed on a database error.", "failures", COUNTED_HERE),
            labels=["pipeline"],
        ),
    )


class LeaderCollector(Collector):
    """Reads the leader at scrape time."""

    def __init__(self, leader: Leader) -> None:
        self.leader = leader

    def describe(self) -> Iterator[Metric]:
        """The families, without values."""
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        """Leadership on every instance; what the merge holds on the leader only."""
        ld = self.leader
        name = [ld.pipeline]
        fams = _families()
        leader, epoch, clock, held, late, overflow, stat, thr, merges, seconds, fenced, failures = (
            fams
        )
        brain = ld.brain if ld.leading else None
        leader.add_metric(name, 1.0 if brain is not None else 0.0)
        epoch.add_metric(name, float(ld.epoch or 0) if brain is not None else 0.0)
        merges.add_metric(name, ld.merges)
        seconds.add_metric(name, ld.merge_seconds)
        fenced.add_metric(name, ld.fenced_out)
        failures.add_metric(name, ld.lease.failures if ld.lease is not None else 0)
        out: list[Metric] = [leader, epoch, merges, seconds, fenced, failures]
        if brain is not None:
            clock.add_metric(name, brain.clock())
            held.add_metric(name, brain.held_buckets())
            late.add_metric(name, brain.late_values)
            for model, checks in sorted(brain.checks.items()):
                overflow.add_metric([ld.pipeline, model], checks.overflow_rows)
            for model, det in sorted(brain.detectors.items()):
                for version, spec, statistic, threshold in det.live():
                    labels = [ld.pipeline, model, version, spec.stream, spec.detector]
                    stat.add_metric(labels, statistic)
                    thr.add_metric(labels, threshold)
            out += [clock, held, late, overflow, stat, thr]
        yield from out
