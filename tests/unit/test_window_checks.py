"""Window checks on the leader's merged stream: what they find, what they record, and that the
answer does not depend on how the events were partitioned."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from driftd.config import IngestSettings, JoinSettings, LeaderSettings, ModelSettings
from driftd.contracts.columns import MISSING, PredictionColumns, Vocab
from driftd.contracts.monitor import DriftDetected, MonitorBatch
from driftd.daemon.abc import RawChunk, Report
from driftd.daemon.brain import Brain
from driftd.daemon.checks import ModelChecks, WindowCheck, check_columns
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.sample import Sample
from driftd.daemon.streams import category_key, feature_column
from driftd.daemon.summaries import ModelSummarizer, encode

LS = LeaderSettings(bucket_s=10.0, idle_s=30.0)
FEATURES = {"x": "numeric", "y": "numeric", "c": "categorical"}
COLORS = ["red", "green", "blue"]


def _model(*checks: dict[str, object]) -> ModelSettings:
    return ModelSettings(features=FEATURES, checks=list(checks))


def _events(n: int, seed: int, t0: float = 0.0, rate: float = 20.0) -> dict[str, np.ndarray]:
    """Stationary events: x, y ~ N(0, 1), c uniform over three colours, at ``rate`` per s."""
    rng = np.random.default_rng(seed)
    return {
        "ts": t0 + np.arange(n) / rate,
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
        "c": rng.choice(np.array(COLORS, dtype=object), size=n),
        "ids": np.array([f"e{seed}-{i}" for i in range(n)], dtype=object),
    }


def _concat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _batch(ev: dict[str, np.ndarray], rows: np.ndarray, vocab: Vocab) -> MonitorBatch:
    n = len(rows)
    cats = [None if v is None else str(v) for v in ev["c"][rows].tolist()]
    preds = PredictionColumns(
        ids=[str(i) for i in ev["ids"][rows]],
        version=np.zeros(n, np.int32),
        ts=ev["ts"][rows].astype(np.float64),
        numeric=np.column_stack([ev["x"][rows], ev["y"][rows]]).astype(np.float64),
        categorical=vocab.codes(cats).reshape(-1, 1),
        prediction=np.zeros(n),
        score=np.full(n, np.nan),
        latency_ms=np.full(n, np.nan),
        error=np.zeros(n, bool),
    )
    return MonitorBatch(
        model="m",
        versions=["1"],
        predictions=preds,
        joined=None,
        expired_versions=np.empty(0, np.int32),
        numeric_names=("x", "y"),
        categorical_names=("c",),
        categorical_keys=[vocab.keys()],
        segments=[str(v) for v in ev["seg"][rows]] if "seg" in ev else (),
    )


def _reports(
    model: ModelSettings, ev: dict[str, np.ndarray], partitions: int, chunk: int = 700
) -> list[list[Report]]:
    """Route events to ``partitions`` partitions by id, each with its own vocabulary (codes
    in its own arrival order); every ``chunk`` events each partition reports."""
    cap = max((c.sample_rows for c in model.checks), default=0)
    cols = [f"col:{n}" for n in check_columns(model)]
    parts = [
        ModelSummarizer("binary", cols, ("x", "y"), LS.bucket_s, sample_rows=cap)
        for _ in range(partitions)
    ]
    vocabs = [Vocab(list(reversed(COLORS)) if p % 2 else []) for p in range(partitions)]
    owner = np.array([int(i.rsplit("-", 1)[1]) * 7919 % partitions for i in ev["ids"].tolist()])
    steps: list[list[Report]] = []
    for lo in range(0, len(ev["ts"]), chunk):
        reports = []
        wm = float(ev["ts"][min(lo + chunk, len(ev["ts"])) - 1])
        for p in range(partitions):
            rows = np.flatnonzero(owner[lo : lo + chunk] == p) + lo
            if len(rows):
                parts[p].update(_batch(ev, rows, vocabs[p]))
            reports.append(Report(p, len(steps) + 1, wm, 0.0, encode({"m": parts[p]})))
            parts[p].clear()
        steps.append(reports)
    return steps


def _run(
    model: ModelSettings, ev: dict[str, np.ndarray], partitions: int, chunk: int = 700
) -> tuple[list[DriftDetected], Brain]:
    brain = Brain({"m": model}, LS)
    fired: list[DriftDetected] = []
    for reports in _reports(model, ev, partitions, chunk):
        brain.absorb(reports)
        fired += brain.advance(reports[0].watermark)
    fired += brain.advance(math.inf)  # the traffic stopped: every held bucket goes out
    return fired, brain


def _key(alarms: Sequence[DriftDetected]) -> list[tuple[object, ...]]:
    return [(a.stream, a.detector, a.ts, round(a.statistic, 12), a.reference) for a in alarms]


def test_categorical_values_are_keyed_the_same_whatever_the_vocabulary_order() -> None:
    ev = _events(50, 0)
    a = feature_column(_batch(ev, np.arange(50), Vocab(COLORS)), "c", ())
    b = feature_column(_batch(ev, np.arange(50), Vocab(list(reversed(COLORS)))), "c", ())
    assert a.tolist() == b.tolist()
    assert set(a.tolist()) <= {category_key(c) for c in COLORS}


def test_a_shifted_feature_is_found_against_the_pinned_reference_and_the_answer_is_the_same_for_any_partitioning() -> (  # noqa: E501
    None
):
    model = _model({"check": "drift", "window_s": 100.0, "sample_rows": 1_500})
    quiet, shifted = _events(6_000, 1), _events(2_000, 2, t0=300.0)
    shifted["x"] = shifted["x"] + 0.5  # a half-sd shift of x in the window [300, 400)
    ev = _concat(quiet, shifted)
    one, _ = _run(model, ev, 1)
    three, _ = _run(model, ev, 3, chunk=450)
    assert _key(one) == _key(three)
    assert [(a.stream, a.ts) for a in one] == [("feature:x", 400.0)]
    a = one[0]
    assert a.detector == "window:drift:ks" and a.version == "*"
    assert a.reference == "pinned:[0,100)"  # the first window with data
    assert a.statistic >= a.threshold  # the KS distance over its floor


def test_a_rolling_reference_names_the_window_before() -> None:
    model = _model({"check": "drift", "window_s": 100.0, "reference": "rolling"})
    quiet, shifted = _events(4_000, 3), _events(2_000, 4, t0=200.0)
    shifted["c"] = np.where(np.arange(2_000) % 2 == 0, "red", shifted["c"])  # red doubles
    alarms, _ = _run(model, _concat(quiet, shifted), 2)
    first = next(a for a in alarms if a.stream == "feature:c")
    assert (first.ts, first.reference) == (300.0, "rolling:[100,200)")


def test_missing_unseen_and_out_of_range_each_fire_on_their_own_fault() -> None:
    model = _model(
        {"check": "missing", "window_s": 100.0},
        {"check": "unseen", "window_s": 100.0},
        {"check": "out_of_range", "window_s": 100.0},
    )
    quiet, bad = _events(4_000, 5), _events(2_000, 6, t0=200.0)
    bad["y"][::10] = np.nan  # 10 % of y missing
    bad["c"][::50] = "purple"  # a category the reference never had
    bad["x"][::20] = 9.0  # 5 % far out of range
    alarms, _ = _run(model, _concat(quiet, bad), 2)
    got = {(a.detector, a.stream) for a in alarms}
    assert got == {
        ("window:missing", "feature:y"),
        ("window:unseen", "feature:c"),
        ("window:out_of_range", "feature:x"),
    }
    assert {a.ts for a in alarms} == {300.0}


def test_a_multivariate_check_sees_a_correlation_no_marginal_test_sees() -> None:
    model = _model(
        {"check": "multivariate", "window_s": 100.0, "sample_rows": 2_000},
        {"check": "drift", "window_s": 100.0, "features": ["x", "y"]},
    )
    quiet, joint = _events(4_000, 7), _events(2_000, 8, t0=200.0)
    joint["y"] = 0.9 * joint["x"] + math.sqrt(1 - 0.81) * joint["y"]  # same marginals
    alarms, _ = _run(model, _concat(quiet, joint), 1)
    assert [(a.detector, a.stream, a.ts) for a in alarms] == [
        ("window:multivariate", "features", 300.0)
    ]


def test_sliding_windows_and_a_pinned_range_test_only_windows_after_the_range() -> None:
    model = _model(
        {
            "check": "drift",
            "features": ["x"],
            "window_s": 100.0,
            "slide_s": 50.0,
            "reference_start": 0.0,
            "reference_end": 100.0,
        }
    )
    quiet, shifted = _events(4_000, 9), _events(2_000, 10, t0=200.0)
    shifted["x"] = shifted["x"] + 1.0
    alarms, _ = _run(model, _concat(quiet, shifted), 1)
    assert [a.ts for a in alarms] == [250.0, 300.0]  # [150, 250) and [200, 300) overlap it
    assert {a.reference for a in alarms} == {"pinned:[0,100)"}


def test_a_restored_brain_tests_its_open_windows_as_if_it_had_never_stopped() -> None:
    model = _model({"check": "drift", "window_s": 100.0}, {"check": "missing", "window_s": 50.0})
    quiet, shifted = _events(3_000, 11), _events(2_000, 12, t0=150.0)
    shifted["x"] = shifted["x"] + 0.6
    shifted["y"][::8] = np.nan
    ev = _concat(quiet, shifted)
    want, _ = _run(model, ev, 2, chunk=333)
    assert {a.detector for a in want} == {"window:drift:ks", "window:missing"}
    got: list[DriftDetected] = []
    brain = Brain({"m": model}, LS)
    for reports in _reports(model, ev, 2, chunk=333):
        brain.absorb(reports)
        got += brain.advance(reports[0].watermark)
        again = Brain({"m": model}, LS)  # a failover after every merge
        again.load_blob(brain.to_blob())
        brain = again
    got += brain.advance(math.inf)
    assert _key(got) == _key(want)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 60),
    cap=st.integers(1, 30),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_the_sample_is_the_same_whatever_the_order_and_split_of_its_rows(
    n: int, cap: int, cuts: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = Sample(
        rng.integers(0, 50, n).astype(np.uint32), rng.normal(size=n), rng.normal(size=(n, 2))
    )
    whole = Sample.empty(2).add(rows, cap)
    perm = rng.permutation(n)
    shuffled = Sample(rows.keys[perm], rows.ts[perm], rows.values[perm])
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    split = Sample.empty(2)
    for lo, hi in itertools.pairwise(bounds):
        part = Sample(shuffled.keys[lo:hi], shuffled.ts[lo:hi], shuffled.values[lo:hi])
        split = split.add(Sample.empty(2).add(part, cap), cap)

    def rows_of(s: Sample) -> set[tuple[int, float, float, float]]:
        return {(int(k), t, *v) for k, t, v in zip(s.keys, s.ts, s.values.tolist(), strict=True)}

    assert len(whole) == min(n, cap)
    assert rows_of(split) == rows_of(whole)


def test_missing_categories_are_missing_not_a_category() -> None:
    ev = _events(10, 13)
    ev["c"][3] = None
    col = feature_column(_batch(ev, np.arange(10), Vocab()), "c", ())
    assert np.isnan(col[3]) and not np.isnan(np.delete(col, 3)).any()
    assert MISSING == -1


REGIONS = np.array(["region=eu", "region=us", "region=apac"], dtype=object)


def _segmented(*checks: dict[str, object], max_segments: int = 50) -> ModelSettings:
    return ModelSettings(
        features=FEATURES,
        checks=list(checks),
        segments={"keys": ["region"], "max_segments": max_segments},
    )


def test_a_shift_in_one_segment_is_found_in_that_segment_for_any_partitioning() -> None:
    model = _segmented({"check": "drift", "window_s": 100.0, "correction": "bh"})
    quiet, shifted = _events(4_000, 20), _events(2_000, 21, t0=200.0)
    for ev in (quiet, shifted):
        ev["seg"] = REGIONS[np.arange(len(ev["ts"])) % 3]
    apac = shifted["seg"] == "region=apac"
    shifted["x"] = np.where(apac, shifted["x"] + 0.8, shifted["x"])  # apac only
    ev = _concat(quiet, shifted)
    one, _ = _run(model, ev, 1)
    three, brain = _run(model, ev, 3, chunk=450)
    assert _key(one) == _key(three)
    streams = {a.stream for a in one}
    assert "feature:x[region=apac]" in streams
    assert not streams & {"feature:x[region=eu]", "feature:x[region=us]", "feature:y"}
    assert brain.checks["m"].overflow_rows == 0


def test_segments_beyond_the_cap_are_counted_and_tested_only_in_the_pool() -> None:
    model = _segmented({"check": "drift", "window_s": 100.0}, max_segments=2)
    ev = _events(3_000, 22)
    ev["seg"] = np.array(["region=eu", "region=us", "region=apac", ""], dtype=object)[
        np.arange(3_000) % 4
    ]
    _, brain = _run(model, ev, 2)
    checks = brain.checks["m"]
    assert sorted(checks.tracked.values()) == ["region=eu", "region=us"]  # the first two seen
    assert checks.overflow_rows == 750  # every apac row


def test_bh_over_features_and_segments_holds_alpha_per_window_on_stationary_data() -> None:
    check_settings = {"check": "drift", "window_s": 10.0, "correction": "bh", "alpha": 0.05}
    model = ModelSettings(
        features={"a": "numeric", "b": "numeric", "c": "categorical"},
        checks=[{**check_settings, "params": {"floor": 0.0, "categorical_floor": 0.0}}],
        segments={"keys": ["s"], "max_segments": 8, "segment_rows": 500},
    )
    checks = ModelChecks("m", model)
    rng = np.random.default_rng(23)
    windows, n = 150, 2_400
    alarmed = 0
    for w in range(windows + 1):
        rows = Sample(
            rng.integers(0, 2**32, n, dtype=np.uint32),
            w * 10.0 + np.sort(rng.uniform(0, 10.0, n)),
            np.column_stack(
                [
                    rng.normal(size=(n, 2)),
                    rng.choice([1.0, 2.0, 3.0], n),
                    (rng.integers(0, 8, n) + 1000).astype(np.float64),  # 8 segment keys
                ]
            ),
        )
        checks.add(rows)
        alarmed += bool(checks.advance((w + 1) * 10.0))
    assert len(checks.tracked) == 8
    # 150 windows after the reference, 27 tests each (3 features x (8 segments + the pool))
    assert 0 < alarmed <= int(stats.binom.ppf(0.999, windows, 0.05)), alarmed


def test_a_window_check_on_its_own_tests_the_pool_only() -> None:
    wc = WindowCheck("m", ModelSettings(features=FEATURES, checks=[{}]).checks[0], FEATURES)
    assert wc.segment_rows == 0


def test_type_errors_are_counted_from_dead_letters_and_tested_against_the_reference() -> None:
    model = _model({"check": "type_errors", "window_s": 100.0})
    T0 = 1_700_000_000
    pipe = Pipeline({"m": model}, IngestSettings(), JoinSettings(), leader=LS)
    lines = []
    for i in range(6_000):  # 20 per second; in [200, 300) one in ten has x as a string
        x: object = "12,5" if 4_000 <= i < 6_000 and i % 10 == 0 else float(i % 7)
        feats = {"x": x, "y": 0.5, "c": "red"}
        event = {"kind": "prediction", "id": f"p{i}", "model": "m", "version": "1",
                 "ts": T0 + i / 20.0, "features": feats, "prediction": 0}  # fmt: skip
        lines.append(json.dumps(event).encode())
    out = pipe.process(RawChunk(0, "mixed", "f", lines, list(range(1, 6_001)), {"f": 6_000}))
    assert {d.reason for d in out.dead_letters} == {"schema"}  # a string for a float
    assert len(out.dead_letters) == 200
    summary = pipe.partition(0).models["m"].summary
    assert sum(b.type_errors for b in summary.buckets.values()) == 200
    brain = Brain({"m": model}, LS)
    brain.absorb([Report(0, 1, T0 + 299.95, 0.0, encode({"m": summary}))])
    alarms = brain.advance(T0 + 250.0)  # the reference window closes; [200, 300) is open
    again = Brain({"m": model}, LS)  # a failover with counts held
    again.load_blob(brain.to_blob())
    alarms += again.advance(math.inf)
    assert [(a.detector, a.stream, a.ts, a.reference) for a in alarms] == [
        ("window:type_errors", "features", T0 + 300.0, f"pinned:[{T0},{T0 + 100})")
    ]
    assert alarms[0].statistic == pytest.approx(0.1)
