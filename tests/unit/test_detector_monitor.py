"""DetectorMonitor: routes each stream of each model version to its own detector."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from driftd.config import DetectorSettings, ModelSettings
from driftd.contracts.columns import JoinedColumns, PredictionColumns
from driftd.contracts.monitor import MonitorBatch
from driftd.daemon.columns import ModelSchema
from driftd.daemon.detector_monitor import DetectorMonitor
from driftd.detectors.base import Alarm, envelope, open_envelope
from driftd.errors import StateVersionError


class Above:
    """Fires when the running sum of values passes ``limit``, then starts again."""

    def __init__(self, limit: float = 3.0) -> None:
        self.limit = limit
        self.total = 0.0

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        out = []
        for i, v in enumerate(np.asarray(values, dtype=float)):
            self.total += v
            if self.total > self.limit:
                out.append(Alarm("Above", i, self.total, self.limit))
                self.total = 0.0
        return out

    def reset(self) -> None:
        self.total = 0.0

    @property
    def statistic(self) -> float:
        return self.total

    @property
    def threshold(self) -> float:
        return self.limit

    def state_dict(self) -> dict[str, Any]:
        return envelope("test.above", 1, {"total": self.total})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.total = open_envelope(state, "test.above", 1)["total"]


def spec(stream: str) -> DetectorSettings:
    return DetectorSettings.model_construct(detector="DDM", stream=stream, params={})


MODEL = ModelSettings(features={"x": "numeric", "c": "categorical"})
SCHEMA = ModelSchema("m", MODEL)


def monitor(*streams: str) -> DetectorMonitor:
    settings = MODEL.model_copy(update={"detectors": [spec(s) for s in streams]})
    return DetectorMonitor("m", SCHEMA, settings, factory=lambda s: Above())


def batch(version: list[int], x: list[float], errors: list[int] | None = None) -> MonitorBatch:
    n = len(version)
    ts = np.arange(n, dtype=float) + 100.0
    preds = PredictionColumns(
        ids=[f"p{i}" for i in range(n)],
        version=np.array(version, dtype=np.int32),
        ts=ts,
        numeric=np.array(x, dtype=float).reshape(n, 1),
        categorical=np.zeros((n, 1), dtype=np.int32),
        prediction=np.ones(n),
        score=np.full(n, np.nan),
        latency_ms=np.full(n, 10.0),
        error=np.zeros(n, dtype=bool),
    )
    joined = None
    if errors is not None:
        joined = JoinedColumns(
            version=np.array(version, dtype=np.int32),
            ts=ts,
            label_ts=ts + 1000,
            numeric=preds.numeric,
            categorical=preds.categorical,
            prediction=np.ones(n),
            score=np.full(n, np.nan),
            label=1.0 - np.array(errors, dtype=float),
            ids=[f"id{i}" for i in range(n)],
        )
    return MonitorBatch(
        "m",
        ["v1", "v2"],
        preds,
        joined,
        np.empty(0, dtype=np.int32),
        SCHEMA.numeric_names,
        SCHEMA.categorical_names,
    )


def test_each_version_has_its_own_detector_and_alarms_carry_event_time() -> None:
    m = monitor("feature:x")
    # v1 sees 2+2 (fires at its 2nd value: batch row 2); v2 sees 1+1+1 (never > 3).
    events = m.update(batch([1, 0, 0, 1, 1], [1, 2, 2, 1, 1]))
    assert [(e.version, e.ts, e.stream) for e in events] == [("v1", 102.0, "feature:x")]


def test_error_stream_uses_joined_predictions_in_label_time() -> None:
    m = monitor("error")
    events = m.update(batch([0, 0, 0, 0, 0], [0] * 5, errors=[1, 1, 1, 1, 0]))
    assert [(e.version, e.ts) for e in events] == [("v1", 1103.0)]  # the 4th error's label


def test_nan_values_are_skipped() -> None:
    m = monitor("score")
    assert m.update(batch([0, 0], [0, 0])) == []  # scores are all NaN: nothing fed


def test_state_round_trip_continues_exactly() -> None:
    a = monitor("feature:x")
    a.update(batch([0, 0], [1.5, 1.0]))
    b = monitor("feature:x")
    b.load_state_dict(a.state_dict())
    nxt = batch([0, 0], [1.0, 0.1])
    assert a.update(nxt) == b.update(nxt) != []


def test_a_changed_spec_starts_fresh_and_a_foreign_state_is_refused() -> None:
    a = monitor("feature:x")
    a.update(batch([0], [2.9]))
    saved = a.state_dict()
    same = monitor("feature:x")
    same.load_state_dict(saved)
    assert same.update(batch([0], [0.5])) != []  # 2.9 + 0.5 > 3: the state was restored
    changed = DetectorMonitor(
        "m",
        SCHEMA,
        MODEL.model_copy(
            update={
                "detectors": [
                    DetectorSettings.model_construct(
                        detector="DDM", stream="feature:x", params={"limit": 5}
                    )
                ]
            }
        ),
        factory=lambda s: Above(),
    )
    changed.load_state_dict(saved)  # its spec differs: the saved state is not reused
    assert changed.update(batch([0], [0.5])) == []
    with pytest.raises(StateVersionError):
        changed.load_state_dict({"kind": "other", "v": 1})


def test_feature_streams_must_name_a_declared_feature() -> None:
    for stream in ("feature:y", "feature:x=1"):  # unknown; an indicator of a numeric feature
        with pytest.raises(ValueError, match="categorical: c"):
            ModelSettings(
                features={"x": "numeric", "c": "categorical"},
                detectors=[{"detector": "DDM", "stream": stream}],
            )
    ok = ModelSettings(
        features={"x": "numeric", "c": "categorical"},
        detectors=[
            {"detector": "DDM", "stream": "feature:c=red"},
            {"detector": "KSWIN", "stream": "feature:c"},
        ],
    )
    assert [d.stream for d in ok.detectors] == ["feature:c=red", "feature:c"]


def test_raw_unit_detectors_are_standardised_with_the_daemons_defaults_unless_told() -> None:
    from driftd.config import DetectorSettings
    from driftd.daemon.detector_monitor import make_detector
    from driftd.detectors import PageHinkley
    from driftd.detectors.standardized import Standardized

    on_latency = make_detector(DetectorSettings(detector="PageHinkley", stream="latency"))
    assert isinstance(on_latency, Standardized) and isinstance(on_latency.inner, PageHinkley)
    assert (on_latency.inner.delta, on_latency.inner.threshold) == (0.25, 50.0)
    mine = make_detector(
        DetectorSettings(detector="PageHinkley", stream="score", params={"threshold": 40.0})
    )
    assert isinstance(mine, Standardized) and mine.inner.threshold == 40.0  # type: ignore[attr-defined]
    raw = make_detector(
        DetectorSettings(detector="PageHinkley", stream="latency", standardize=False)
    )
    assert isinstance(raw, PageHinkley) and raw.threshold == 50.0  # River's default, raw units
    errors = make_detector(DetectorSettings(detector="PageHinkley", stream="error"))
    assert isinstance(errors, PageHinkley)  # a classifier's 0/1 errors are left as they are
    regression = make_detector(DetectorSettings(detector="ADWIN", stream="error"), "regression")
    assert isinstance(regression, Standardized)  # absolute errors are in the target's units


def test_the_live_statistic_and_an_alarms_series_are_kept_for_metrics_and_incidents() -> None:
    m = monitor("feature:x")
    m.update(batch([1, 0, 0, 1, 1], [1, 2, 2, 1, 1]))  # v1: 2, 2 (fires at 102), then 0 left
    live = {(v, s.stream): (stat, thr) for v, s, stat, thr in m.live()}
    assert live == {("v1", "feature:x"): (0.0, 3.0), ("v2", "feature:x"): (3.0, 3.0)}
    evidence = m.drain_evidence()
    assert list(evidence) == [("v1", "feature:x", 102.0)]
    # the alarm's own point (4 > 3), then the detector after the batch (reset to 0)
    assert evidence[("v1", "feature:x", 102.0)]["statistic"] == [
        [102.0, 4.0, 3.0],
        [102.0, 0.0, 3.0],
    ]
    assert m.drain_evidence() == {}
    again = monitor("feature:x")
    again.load_state_dict(m.state_dict())
    assert again.series == m.series and again.live() == m.live()
