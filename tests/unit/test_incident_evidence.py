"""A window check's alarm carries its explanation to the leader: the features that moved,
ranked, with category names (not keys) from the partitions; stored evidence round-trips into
what the report renders."""

from __future__ import annotations

import json
import math

import numpy as np

from driftd.config import IngestSettings, JoinSettings, LeaderSettings, ModelSettings
from driftd.daemon.abc import RawChunk, Report
from driftd.daemon.brain import Brain
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.summaries import encode
from driftd.incidents.evidence import build, to_json
from driftd.incidents.lifecycle import Incident
from driftd.incidents.report import render
from driftd.incidents.types import FeatureShift, Histogram, PerformancePoint, SeriesPoint

LS = LeaderSettings(bucket_s=10.0, idle_s=30.0)
T0 = 1_700_000_000.0
MODEL = ModelSettings(
    features={"x": "numeric", "y": "numeric", "color": "categorical"},
    checks=[{"check": "drift", "window_s": 100.0}],
)


def _lines(n: int, seed: int) -> list[bytes]:
    """20 predictions a second; from 200 s on, x shifts by 1 sd and 'blue' takes over."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = T0 + i / 20.0
        late = ts >= T0 + 200
        color = rng.choice(["red", "blue", "green"], p=[0.2, 0.6, 0.2] if late else [0.4, 0.2, 0.4])
        feats = {"x": float(rng.normal(1.0 if late else 0.0)), "y": float(rng.normal()),
                 "color": str(color)}  # fmt: skip
        event = {"kind": "prediction", "id": f"p{i}", "model": "m", "version": "1", "ts": ts,
                 "features": feats, "prediction": 0}  # fmt: skip
        out.append(json.dumps(event).encode())
    return out


def test_a_drift_alarm_explains_which_features_moved_with_their_names() -> None:
    pipe = Pipeline({"m": MODEL}, IngestSettings(), JoinSettings(), leader=LS)
    lines = _lines(6_000, 3)
    pipe.process(RawChunk(0, "mixed", "f", lines, list(range(1, 6_001)), {"f": 6_000}))
    summary = pipe.partition(0).models["m"].summary
    brain = Brain({"m": MODEL}, LS)
    brain.absorb([Report(0, 1, T0 + 299.95, 0.0, encode({"m": summary}))])
    alarms = brain.advance(math.inf)
    assert {a.stream for a in alarms} == {"feature:x", "feature:color"}
    evidence = brain.drain_evidence()
    assert set(evidence) == {("m", "*", "feature:x"), ("m", "*", "feature:color")}
    assert brain.drain_evidence() == {}  # drained once
    shifts = evidence[("m", "*", "feature:x")]["shifts"]
    assert [s["feature"] for s in shifts][:2] in (["x", "color"], ["color", "x"])
    assert shifts[-1]["feature"] == "y" and shifts[-1]["lower"] < 0.1
    color = next(s for s in shifts if s["feature"] == "color")
    assert "'blue'" in color["summary"] and "%" in color["summary"]
    x = next(s for s in shifts if s["feature"] == "x")
    assert x["lower"] < 1.0 < x["upper"] or abs(x["effect"] - 1.0) < 0.15  # W1 / sd = 1


def test_stored_evidence_round_trips_into_the_report() -> None:
    shift = FeatureShift(
        "amount <b>", "numeric", 0.6, 0.5, 0.7, 0.95, "wasserstein / sd", float("nan"), 10, 8,
        "mean 1 -> 2", Histogram([0.0, 1.0, 2.0], [], [0.5, 0.5], [0.2, 0.8]),
    )  # fmt: skip
    stored = json.loads(
        json.dumps(
            to_json(
                [shift],
                [SeriesPoint(1.0, 0.2, 0.5), SeriesPoint(2.0, 0.9, 0.5)],
                [PerformancePoint(1.0, 0.8, 0.75, 0.85, None)],
                "accuracy",
            )
        )
    )  # plain JSON: NaN is stored as null
    inc = Incident("inc-0123456789abcdef", "m", "3", "feature:amount", "inc-0123456789abcdef",
                   "open", 1.0, 2.0, "ADWIN", 2, ("ADWIN",), "pinned:[0,1)", 0.9, 0.5)  # fmt: skip
    ev = build(inc, stored, [("API", "http://x/api/v1/incidents/inc-0123456789abcdef")])
    assert ev.shifts[0].feature == "amount <b>" and math.isnan(ev.shifts[0].p_value)
    assert ev.statistic[1].value == 0.9 and ev.performance[0].realised is None
    page = render(ev)
    assert "amount &lt;b&gt;" in page and 'data-plot="statistic"' in page
    assert 'data-plot="performance"' in page


def test_a_feature_missing_from_the_window_is_left_out_of_the_explanation() -> None:
    from driftd.daemon.checks import WindowCheck
    from driftd.daemon.sample import Sample

    check = WindowCheck("m", MODEL.checks[0], MODEL.features)
    rng = np.random.default_rng(1)
    n = 400
    ref = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.integers(0, 3, n)])
    cur = np.column_stack([rng.normal(2.0, size=n), np.full(n, np.nan), rng.integers(0, 3, n)])
    keys = np.arange(n, dtype=np.uint32)
    got = check._explain(Sample(keys, np.zeros(n), cur), Sample(keys, np.zeros(n), ref))
    assert got is not None
    assert [s["feature"] for s in got["shifts"]] == ["x", "color"]  # y: no values in the window
