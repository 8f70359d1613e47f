"""The leader's merge (``Brain``): the global watermark, idleness, late values, restore."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftd.config import LeaderSettings, ModelSettings
from driftd.daemon.abc import Report
from driftd.daemon.brain import Brain
from driftd.daemon.summaries import BucketSummary, ModelSummarizer, decode, encode

MODEL = ModelSettings(
    task="binary",
    features={"f0": "numeric"},
    detectors=[{"detector": "PageHinkley", "stream": "feature:f0", "params": {"threshold": 3.0}}],
)
LS = LeaderSettings(bucket_s=10.0, idle_s=30.0)


def _summary(ts: list[float], vals: list[float], version: str = "1") -> bytes:
    s = ModelSummarizer("binary", ["feature:f0"], ["f0"], LS.bucket_s)
    t = np.asarray(ts, np.float64)
    for b in np.unique(np.floor(t / LS.bucket_s)).tolist():
        sel = np.floor(t / LS.bucket_s) == b
        keys = np.arange(len(t), dtype=np.uint32)[sel]
        s._bucket(int(b)).add(version, "feature:f0", t[sel], keys, np.asarray(vals)[sel])
    return encode({"fraud": s})


def _report(
    p: int, seq: int, wm: float, active: float, ts: list[float], vals: list[float]
) -> Report:
    return Report(p, seq, wm, active, _summary(ts, vals))


def _brain() -> Brain:
    return Brain({"fraud": MODEL}, LS)


def test_report_data_round_trips() -> None:
    data = _summary([1.0, 2.0, 15.0], [0.5, 0.25, 1.0])
    got = list(decode(data, {"fraud": "binary"}))
    assert [(m, b) for m, b, _ in got] == [("fraud", 0), ("fraud", 1)]
    ts, vals = got[0][2].ordered("1", "feature:f0")
    assert ts.tolist() == [1.0, 2.0] and vals.tolist() == [0.5, 0.25]
    assert list(decode(data, {})) == []  # a model no longer configured is skipped


def test_the_watermark_is_the_least_over_live_partitions_and_idle_ones_stop_holding_it() -> None:
    b = _brain()
    b.absorb([_report(0, 1, 100.0, 1000.0, [], []), _report(1, 1, 40.0, 1000.0, [], [])])
    assert b.watermark(now=1010.0) == 40.0
    # partition 1 has consumed nothing for more than idle_s: it no longer holds the others
    b.absorb([_report(0, 2, 120.0, 1040.0, [], [])])
    assert b.watermark(now=1040.0) == 120.0
    # every partition idle (the traffic stopped): nothing more is coming, all held goes out
    assert b.watermark(now=5000.0) == math.inf
    assert _brain().watermark(now=5000.0) == -math.inf  # no partition known: nothing to emit


def test_an_expected_partition_not_heard_from_holds_the_watermark_until_waited() -> None:
    b = _brain()
    b.absorb([_report(0, 1, 100.0, 1000.0, [], [])])
    assert b.watermark(1000.0, expected=[0, 1], waited=False) == -math.inf
    assert b.watermark(1000.0, expected=[0, 1], waited=True) == 100.0


def test_buckets_are_emitted_in_order_once_the_watermark_passes_their_end() -> None:
    b = _brain()
    b.absorb([_report(0, 1, 15.0, 0.0, [1.0, 12.0], [0.0, 0.0])])
    b.advance(15.0)
    assert b.clock() == 10.0  # bucket [0, 10) is out; [10, 20) waits
    assert b.held_buckets() == 1
    assert b.counts["fraud"].counts == {}  # no predictions: counts come from the batches
    b.advance(math.inf)
    assert b.held_buckets() == 0


def test_a_repeated_report_is_merged_once() -> None:
    b = _brain()
    rep = _report(0, 1, 5.0, 0.0, [1.0, 2.0], [0.0, 1.0])
    b.absorb([rep])
    b.absorb([rep])  # a leader re-reading reports its predecessor's save did not delete
    assert b.merged_values == 2


def test_values_for_an_emitted_bucket_are_late_and_go_out_with_the_next() -> None:
    b = _brain()
    b.absorb([_report(0, 1, 25.0, 0.0, [21.0], [0.0])])
    b.advance(25.0)
    assert b.clock() == 20.0
    b.absorb([_report(1, 1, 30.0, 0.0, [3.0, 4.0], [1.0, 1.0])])
    assert b.late_values == 2
    b.advance(30.0)
    assert b.held_buckets() == 0  # the late bucket and [20, 30) both out


def test_a_restored_brain_continues_exactly_where_the_saved_one_stopped() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 1, 3000), rng.normal(2, 1, 3000)])
    ts = np.arange(len(x)) * 0.05
    reports = [
        _report(0, i + 1, float(ts[min(i * 500 + 499, len(ts) - 1)]) - 1, 0.0,
                ts[i * 500 : (i + 1) * 500].tolist(), x[i * 500 : (i + 1) * 500].tolist())
        for i in range(12)
    ]  # fmt: skip
    straight = _brain()
    want = []
    for r in reports:
        straight.absorb([r])
        want += straight.advance(r.watermark)
    got = []
    b = _brain()
    for r in reports:
        b.absorb([r])
        got += b.advance(r.watermark)
        again = _brain()  # a failover after every merge
        again.load_blob(b.to_blob())
        b = again
    assert want, "the shift must be detected"
    assert got == want
    assert b.alarms().totals == straight.alarms().totals


def test_bucket_summaries_merge_by_concatenation_whatever_the_split() -> None:
    a, b, whole = BucketSummary("binary"), BucketSummary("binary"), BucketSummary("binary")
    t = np.array([1.0, 1.0, 2.0, 3.0])
    k = np.array([9, 4, 1, 7], np.uint32)
    v = np.array([1.0, 0.0, 1.0, 0.0])
    whole.add("1", "error", t, k, v)
    a.add("1", "error", t[[0, 3]], k[[0, 3]], v[[0, 3]])
    b.add("1", "error", t[[1, 2]], k[[1, 2]], v[[1, 2]])
    b.merge(a)
    for got in (b.ordered("1", "error"), whole.ordered("1", "error")):
        assert got[0].tolist() == [1.0, 1.0, 2.0, 3.0]
        assert got[1].tolist() == [0.0, 1.0, 1.0, 0.0]  # ties in time broken by id key


@pytest.mark.parametrize("width", [5.0, 20.0])
def test_a_changed_bucket_width_keeps_the_event_clock(width: float) -> None:
    b = _brain()
    b.absorb([_report(0, 1, 40.0, 0.0, [1.0], [0.0])])
    b.advance(40.0)
    other = Brain({"fraud": MODEL}, LeaderSettings(bucket_s=width, idle_s=30.0))
    other.load_blob(b.to_blob())
    assert other.clock() == pytest.approx(40.0)
