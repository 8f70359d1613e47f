"""Partition-level families carry a ``partition`` label: when a rebalance moves a partition
from instance A to instance B, its series ends on A and continues on B with the same value, so
a sum over instances per label set neither drops (a counter reset on A) nor jumps (on B).
The leader's decision families have no ``partition`` label."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftd.daemon.metrics.checkpointed import CheckpointedCollector
from driftd.daemon.metrics.sli import SliCollector
from driftd.daemon.pipeline import Pipeline
from driftd.sim import synth
from tests.unit.test_pipeline import process

Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]
# The leader's decisions (alarms, statistics): not partition state.
DECISIONS = ("driftd_drift_alarms_total", "driftd_drift_statistic", "driftd_drift_threshold")


def _registry(p: Pipeline) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(CheckpointedCollector(p, [synth.MODEL]))
    reg.register(SliCollector(p, {synth.MODEL: "binary"}))
    return reg


def _scrape(reg: CollectorRegistry) -> Samples:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _partition(key: Key) -> str | None:
    return dict(key[1]).get("partition")


def _partitioned(samples: Samples) -> Samples:
    return {k: v for k, v in samples.items() if k[0] not in DECISIONS}


def _by_partition(samples: Samples, part: str) -> Samples:
    return {k: v for k, v in _partitioned(samples).items() if _partition(k) == part}


def _summed(*instances: Samples) -> dict[Key, float]:
    """``sum by (every label but partition)`` over the instances' partition-level series."""
    out: dict[Key, float] = defaultdict(float)
    for samples in instances:
        for (name, labels), v in _partitioned(samples).items():
            out[(name, tuple(kv for kv in labels if kv[0] != "partition"))] += v
    return dict(out)


@pytest.fixture
def instances(
    make_pipeline: Callable[..., Pipeline], synth_stream: synth.Stream
) -> tuple[Pipeline, Pipeline]:
    """Instance A holds partitions 0 and 1, instance B partition 2, each with events."""
    lines = synth_stream.lines
    a, b = make_pipeline(), make_pipeline()
    process(a, lines[:700], part=0)
    process(a, lines[700:1100], part=1)
    process(b, lines[1100:], part=2)
    return a, b


def test_every_partition_level_series_has_its_partition(
    instances: tuple[Pipeline, Pipeline],
) -> None:
    a, _ = instances
    samples = _scrape(_registry(a))
    names = {k[0] for k in samples}
    assert {
        "driftd_events_consumed_total",
        "driftd_events_decoded_total",
        "driftd_events_dead_lettered_total",
        "driftd_events_ignored_total",
        "driftd_join_events_total",
        "driftd_feature_missing_total",
        "driftd_predictions_total",
        "driftd_labeled_total",
        "driftd_prediction_latency_seconds_bucket",
        "driftd_model_quality",
    } <= names
    assert {_partition(k) for k in _partitioned(samples)} == {"0", "1"}
    assert all(_partition(k) is None for k in samples if k[0] in DECISIONS)
    # Every known reason and outcome exists at 0, once per partition held.
    for part in ("0", "1"):
        for reason in ("unknown_model", "oversized", "unknown_feature"):
            key = ("driftd_events_ignored_total", (("partition", part), ("reason", reason)))
            assert key in samples
        outcome = (("model", synth.MODEL), ("outcome", "dropped"), ("partition", part))
        assert ("driftd_join_events_total", outcome) in samples


def test_a_moved_partition_keeps_its_series_and_the_sum_over_instances(
    instances: tuple[Pipeline, Pipeline],
) -> None:
    a, b = instances
    reg_a, reg_b = _registry(a), _registry(b)
    a_before, b_before = _scrape(reg_a), _scrape(reg_b)
    moved = _by_partition(a_before, "0")
    assert moved[("driftd_events_consumed_total", (("partition", "0"),))] == 700
    assert not _by_partition(b_before, "0")

    # The rebalance: A checkpoints partition 0 and lets it go; B restores the checkpoint.
    blob = a.snapshot(0)
    a.drop(0)
    b.restore(0, blob)
    a_after, b_after = _scrape(reg_a), _scrape(reg_b)

    assert not _by_partition(a_after, "0")  # ends on A: no drop of a series A keeps
    assert _by_partition(b_after, "0") == moved  # continues on B from the same value
    for part in ("1", "2"):  # the partitions that stayed put are untouched
        assert _by_partition(a_after, part) == _by_partition(a_before, part)
        assert _by_partition(b_after, part) == _by_partition(b_before, part)
    before, after = _summed(a_before, b_before), _summed(a_after, b_after)
    assert before and after == before
    # No series of either instance went down (Prometheus would read a counter reset).
    for samples_before, samples_after in ((a_before, a_after), (b_before, b_after)):
        for k, v in _partitioned(samples_after).items():
            if k in samples_before and not k[0].startswith("driftd_model_quality"):
                assert v >= samples_before[k], k
