"""Label-free performance estimation on the leader: CBPE for a binary classifier, DLE for a
regressor, fitted on each version's first labeled traffic, the same for any partitioning."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from driftd.config import LeaderSettings, ModelSettings
from driftd.contracts.columns import JoinedColumns, PredictionColumns
from driftd.contracts.monitor import DriftDetected, MonitorBatch
from driftd.daemon.abc import Report
from driftd.daemon.brain import Brain
from driftd.daemon.checks import sample_rows
from driftd.daemon.performance import performance_streams, realised
from driftd.daemon.summaries import ModelSummarizer, encode

LS = LeaderSettings(bucket_s=10.0, idle_s=30.0)
World = dict[str, Any]


def _world(n: int, seed: int, t0: float, hard: bool = False, labeled: bool = False) -> World:
    """A calibrated binary classifier: score p, label ~ Bernoulli(p), prediction p >= 0.5.
    ``hard`` traffic has scores near 0.5, where it is wrong more often."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.35, 0.65, n) if hard else rng.beta(0.5, 0.5, n)
    return {
        "ids": [f"{seed}-{i}" for i in range(n)],
        "ts": t0 + np.arange(n) / 10.0,
        "x": rng.normal(size=n),
        "score": p,
        "prediction": (p >= 0.5).astype(np.float64),
        "label": (rng.random(n) < p).astype(np.float64),
        "labeled": labeled,
    }


def _batch(w: World, lo: int, hi: int) -> MonitorBatch:
    n = hi - lo
    sl = slice(lo, hi)
    preds = PredictionColumns(
        ids=w["ids"][sl],
        version=np.zeros(n, np.int32),
        ts=w["ts"][sl],
        numeric=w["x"][sl, None],
        categorical=np.empty((n, 0), np.int32),
        prediction=w["prediction"][sl],
        score=w["score"][sl],
        latency_ms=np.full(n, np.nan),
        error=np.zeros(n, bool),
    )
    joined = None
    if w["labeled"]:  # labels join one second after their prediction
        joined = JoinedColumns(
            version=np.zeros(n, np.int32),
            ts=w["ts"][sl],
            label_ts=w["ts"][sl] + 1.0,
            numeric=w["x"][sl, None],
            categorical=np.empty((n, 0), np.int32),
            prediction=w["prediction"][sl],
            score=w["score"][sl],
            label=w["label"][sl],
            ids=w["ids"][sl],
        )
    return MonitorBatch("m", ["1"], preds, joined, np.empty(0, np.int32), ("x",), ())


def _run(
    model: ModelSettings, worlds: list[World], partitions: int
) -> tuple[list[DriftDetected], Brain]:
    streams = list(performance_streams(model))
    parts = [
        ModelSummarizer(model.task, streams, ("x",), LS.bucket_s, sample_rows(model))
        for _ in range(partitions)
    ]
    brain = Brain({"m": model}, LS)
    fired: list[DriftDetected] = []
    seq = 0
    for w in worlds:
        n = len(w["ids"])
        for lo in range(0, n, 500):
            seq += 1
            hi = min(lo + 500, n)
            for p in range(partitions):  # rows dealt round-robin in runs of 50
                rows = [i for i in range(lo, hi) if (i // 50) % partitions == p]
                if rows:
                    parts[p].update(_batch(w, rows[0], rows[-1] + 1) if len(rows) == hi - lo
                                    else _sub(w, rows))  # fmt: skip
            wm = float(w["ts"][hi - 1])
            reports = [Report(p, seq, wm, 0.0, encode({"m": parts[p]})) for p in range(partitions)]
            for part in parts:
                part.clear()
            brain.absorb(reports)
            fired += brain.advance(wm)
    fired += brain.advance(math.inf)
    return fired, brain


def _sub(w: World, rows: list[int]) -> MonitorBatch:
    idx = np.asarray(rows)
    sub = {k: (np.asarray(v)[idx] if isinstance(v, np.ndarray) else v) for k, v in w.items()}
    sub["ids"] = [w["ids"][i] for i in rows]
    return _batch(sub, 0, len(rows))


BINARY = ModelSettings(
    features={"x": "numeric"},
    performance=[{"metric": "accuracy", "window_s": 200.0, "reference_s": 300.0}],
)


def test_cbpe_sees_accuracy_fall_without_labels_and_the_answer_is_partition_free() -> None:
    worlds = [
        _world(3_000, 1, 0.0, labeled=True),  # [0, 300): labeled: the reference
        _world(3_000, 2, 300.0),  # [300, 600): same traffic, no labels: quiet
        _world(2_000, 3, 600.0, hard=True),  # [600, 800): scores near 0.5, no labels
    ]
    one, brain = _run(BINARY, worlds, 1)
    two, _ = _run(BINARY, worlds, 2)
    assert [(a.ts, a.statistic) for a in one] == [(a.ts, a.statistic) for a in two]
    assert [(a.stream, a.detector, a.ts) for a in one] == [("performance:accuracy", "CBPE", 800.0)]
    a = one[0]
    # the hard traffic's true accuracy is about 0.56; the reference's about 0.82
    assert 0.5 < a.statistic < 0.62 and a.threshold > 0.75
    assert a.reference == "labeled:[1,301)" and a.version == "1"
    again = Brain({"m": BINARY}, LS)
    again.load_blob(brain.to_blob())
    (start, ref), (start2, ref2) = (
        b.performance["m"].entries[0].references["1"] for b in (brain, again)
    )
    assert start == start2 == 1.0 and len(ref) == 3_000  # score, prediction, label of each
    assert np.array_equal(ref.values, ref2.values) and ref.values.shape == (3_000, 3)


def test_a_window_before_the_reference_is_complete_is_not_judged() -> None:
    model = ModelSettings(
        features={"x": "numeric"},
        performance=[{"metric": "f1", "window_s": 100.0, "reference_s": 10_000.0}],
    )
    alarms, _ = _run(model, [_world(2_000, 4, 0.0, labeled=True), _world(2_000, 5, 200.0, True)], 1)
    assert alarms == []


def test_dle_sees_the_error_grow_where_the_noise_is() -> None:
    def regress(n: int, seed: int, t0: float, shift: float, labeled: bool) -> World:
        rng = np.random.default_rng(seed)
        x = rng.normal(shift, 1.0, n)
        pred = 2.0 * x
        label = pred + rng.normal(size=n) * np.exp(x)  # noisier for larger x
        return {
            "ids": [f"r{seed}-{i}" for i in range(n)],
            "ts": t0 + np.arange(n) / 10.0,
            "x": x,
            "score": np.full(n, np.nan),
            "prediction": pred,
            "label": label,
            "labeled": labeled,
        }

    model = ModelSettings(
        task="regression",
        features={"x": "numeric"},
        performance=[{"metric": "mae", "window_s": 200.0, "reference_s": 300.0}],
    )
    worlds = [
        regress(3_000, 6, 0.0, 0.0, True),
        regress(3_000, 7, 300.0, 0.0, False),  # [300, 600): quiet
        regress(2_000, 8, 600.0, 1.0, False),  # [600, 800): covariate shift into the noise
    ]
    alarms, _ = _run(model, worlds, 1)
    assert [(a.stream, a.detector, a.ts) for a in alarms] == [("performance:mae", "DLE", 800.0)]
    assert alarms[0].statistic > alarms[0].threshold


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "roc_auc", "mae"])
def test_realised_metrics_are_scikit_learns(metric: str) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(9)
    score = rng.random(500)
    label = (rng.random(500) < score).astype(np.float64)
    pred = (score >= 0.5).astype(np.float64)
    got = realised(metric, score, pred, label)
    want = {
        "accuracy": lambda: sk.accuracy_score(label, pred),
        "precision": lambda: sk.precision_score(label, pred),
        "recall": lambda: sk.recall_score(label, pred),
        "f1": lambda: sk.f1_score(label, pred),
        "roc_auc": lambda: sk.roc_auc_score(label, score),
        "mae": lambda: sk.mean_absolute_error(label, pred),
    }[metric]()
    assert got == pytest.approx(want)


def test_a_performance_alarm_carries_the_estimates_leading_to_it() -> None:
    worlds = [
        _world(3_000, 1, 0.0, labeled=True),
        _world(3_000, 2, 300.0),
        _world(2_000, 3, 600.0, hard=True),
    ]
    (alarm,), brain = _run(BINARY, worlds, 1)
    evidence = brain.drain_evidence()[("m", "1", "performance:accuracy")]
    assert evidence["metric"] == "accuracy"
    ref, *windows = evidence["performance"]
    assert ref[0] == 301.0 and ref[1] == ref[4] == alarm.threshold  # realised on the reference
    assert [w[0] for w in windows] == [400.0, 600.0, 800.0]  # each judged window's end
    assert windows[-1][1] == alarm.statistic and windows[-1][2] < windows[-1][1] < windows[-1][3]
    assert brain.drain_evidence() == {}


def test_a_report_fills_in_realised_performance_once_the_labels_are_in(tmp_path: Any) -> None:
    from driftd.daemon.performance import fill_realised
    from driftd.retrain.store import LabeledRows, LabeledStore

    w = _world(4_000, 11, 1_000.0, hard=True, labeled=True)  # predictions in [1000, 1400)
    n = len(w["ids"])
    store = LabeledStore(tmp_path / "labeled")
    store.append("m", LabeledRows(
        ids=w["ids"], ts=w["ts"], label_ts=w["ts"] + 1.0, version=np.zeros(n, np.int32),
        version_names=["1"], numeric=w["x"][:, None], numeric_names=["x"],
        categorical=np.empty((n, 0), np.int32), categorical_names=[], categorical_vocabs=[],
        prediction=w["prediction"], score=w["score"], label=w["label"],
    ))  # fmt: skip
    store.flush()
    evidence = {
        "metric": "accuracy", "window_s": 200.0, "task": "binary",
        # the reference's realised value, then windows ending at 1200, 1400 and 1600
        "performance": [[300.0, 0.8, 0.8, 0.8, 0.8], [1200.0, 0.55, 0.5, 0.6, None],
                        [1400.0, 0.56, 0.5, 0.6, None], [1600.0, 0.57, 0.5, 0.6, None]],
    }  # fmt: skip
    got = fill_realised(evidence, store, "m", "1")["performance"]
    first = slice(0, 2_000)  # 10 predictions a second: [1000, 1200)
    want = realised("accuracy", w["score"][first], w["prediction"][first], w["label"][first])
    assert got[1][4] == pytest.approx(want) and 0.45 < want < 0.65
    assert got[2][4] is not None and got[3][4] is None  # no labeled rows in [1400, 1600)
    assert got[0] == evidence["performance"][0]  # the reference point as it was
    assert fill_realised(evidence, store, "m", "2")["performance"][1][4] is None  # other version
