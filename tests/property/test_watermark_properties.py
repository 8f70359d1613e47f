"""No single event can expire joins that would not have expired without it.

A stream of predictions and labels in time order is processed with and without one extra
event, at any position after the first, in any chunking. An extra event stamped beyond
``join.max_future_s`` ahead of the stream (or before ``join.min_ts``) is dead-lettered and
changes nothing else; any other extra event is either refused and changes nothing, or was
within ``max_future_s`` of the stream's time.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.config import IngestSettings, JoinSettings, ModelSettings
from driftd.daemon.abc import RawChunk
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.summary import JOIN_KEYS

T0 = 1_767_225_600.0
MAX_FUTURE = 3600.0
MODELS = {"m": ModelSettings(features={"x": "numeric"}, max_label_delay_s=30.0)}
JOIN = JoinSettings(allowed_lateness_s=5.0, max_stream_skew_s=600.0, max_future_s=MAX_FUTURE)
PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pred(id_: str, ts: float) -> bytes:
    return msgspec.json.encode(
        {
            "kind": "prediction",
            "id": id_,
            "model": "m",
            "version": "1",
            "ts": ts,
            "features": {"x": 1.0},
            "prediction": 1,
        }
    )


def _label(id_: str, ts: float) -> bytes:
    return msgspec.json.encode({"kind": "label", "id": id_, "model": "m", "ts": ts, "label": 1})


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[float, bytes]]:
    """(time, raw) in time order: predictions a few seconds apart, labels up to 60 s later."""
    events: list[tuple[float, bytes]] = []
    t = T0
    for i in range(draw(st.integers(2, 60))):
        t += draw(st.floats(0, 20))
        events.append((t, _pred(f"p{i}", t)))
        if draw(st.booleans()):
            lt = t + draw(st.floats(0, 60))
            events.append((lt, _label(f"p{i}", lt)))
    events.sort(key=lambda e: e[0])
    return events


def _run(raws: list[bytes], size: int) -> tuple[dict[str, int], list[tuple[bytes, str]]]:
    p = Pipeline(MODELS, IngestSettings(), JOIN)
    letters = []
    for lo in range(0, len(raws), size):
        part = raws[lo : lo + size]
        chunk = RawChunk(0, "mixed", "s", part, list(range(lo, lo + len(part))), {"s": lo})
        letters += [(d.raw, d.reason) for d in p.process(chunk).dead_letters]
    counts = p.summary()["models"]["m"]
    return {k: counts[k] for k in JOIN_KEYS}, letters


def _extra(time: float, kind: str, id_: str) -> bytes:
    return _pred(id_, time) if kind == "prediction" else _label(id_, time)


@PROPS
@given(
    events=streams(),
    data=st.data(),
    size=st.integers(1, 50),
)
def test_an_outlier_changes_nothing_but_the_dead_letters(
    events: list[tuple[float, bytes]], data: Any, size: int
) -> None:
    at = data.draw(st.integers(1, len(events)))
    before = max(t for t, _ in events[:at])
    far = data.draw(
        st.one_of(
            st.floats(before + MAX_FUTURE + 1, 9e10),  # beyond max_future_s ahead
            st.floats(0, 946_684_799),  # before min_ts
        )
    )
    kind = data.draw(st.sampled_from(["prediction", "label"]))
    id_ = data.draw(st.sampled_from(["p0", "p1", "new"]))
    outlier = _extra(far, kind, id_)
    raws = [r for _, r in events]
    base, base_letters = _run(raws, size)
    counts, letters = _run([*raws[:at], outlier, *raws[at:]], size)
    assert base_letters == []
    assert letters == [(outlier, "future_timestamp" if far > T0 else "invalid_value")]
    assert counts == base


@PROPS
@given(events=streams(), data=st.data(), size=st.integers(1, 50))
def test_an_extra_event_is_refused_without_effect_or_was_near_the_stream(
    events: list[tuple[float, bytes]], data: Any, size: int
) -> None:
    at = data.draw(st.integers(1, len(events)))
    before = max(t for t, _ in events[:at])
    extra_ts = data.draw(st.floats(0, 1e11))
    kind = data.draw(st.sampled_from(["prediction", "label"]))
    extra = _extra(extra_ts, kind, "extra")
    raws = [r for _, r in events]
    base, _ = _run(raws, size)
    counts, letters = _run([*raws[:at], extra, *raws[at:]], size)
    if letters:
        assert [raw for raw, _ in letters] == [extra]
        assert counts == base
    else:
        assert 946_684_800 <= extra_ts <= before + MAX_FUTURE
