"""One value at a time (the scalar fast path) against batches: same alarms, same state.

Every streaming detector takes a plain-Python path when ``update`` gets one number; these
properties hold it to the batch path bit for bit: alarms (index, kind, statistic, threshold)
and ``state_dict()``, for single values, random batches and any interleaving of the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.detectors import ADWIN, CUSUM, DDM, EDDM, HDDM_A, HDDM_W, KSWIN, PageHinkley
from driftd.detectors.base import as_scalar

Factory = Callable[[], Any]
DETECTORS: dict[str, tuple[Factory, str]] = {  # name: (factory, stream family)
    "ADWIN": (ADWIN, "gauss"),
    "ADWIN-bern-clock5": (partial(ADWIN, clock=5, grace_period=3), "bern"),
    "PageHinkley": (partial(PageHinkley, delta=0.1, threshold=8.0), "gauss"),
    "PageHinkley-up": (partial(PageHinkley, threshold=5.0, mode="up", alpha=1.0), "gauss"),
    "PageHinkley-down": (partial(PageHinkley, threshold=5.0, mode="down"), "gauss"),
    "CUSUM": (partial(CUSUM, threshold=5.0, warm_start=20), "gauss"),
    "CUSUM-fixed": (partial(CUSUM, target=0.0, scale=1.0, threshold=4.0, mode="up"), "gauss"),
    "CUSUM-bern": (partial(CUSUM, threshold=5.0, warm_start=30), "bern"),
    "DDM": (DDM, "bern"),
    "EDDM": (EDDM, "bern"),
    "HDDM_A": (HDDM_A, "bern"),
    "HDDM_A-two": (partial(HDDM_A, two_sided_test=True), "bern"),
    "HDDM_W": (HDDM_W, "bern"),
    "HDDM_W-two": (partial(HDDM_W, two_sided_test=True), "bern"),
    "KSWIN": (partial(KSWIN, window_size=60, stat_size=20, seed=3), "gauss"),
}

Alarms = list[tuple[int, str, float, float]]


def stream(family: str, seed: int, n: int, change: int) -> np.ndarray:
    """A seeded stream whose mean shifts at ``change`` (and back at 2·change)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    shifted = (i >= change) & (i < 2 * change)
    if family == "bern":
        return (rng.random(n) < np.where(shifted, 0.45, 0.08)).astype(np.float64)
    return rng.normal(np.where(shifted, 1.5, 0.0), 1.0)


def feed(det: Any, x: np.ndarray, cuts: list[int], single: Callable[[float], Any]) -> Alarms:
    """Feed ``x`` split at ``cuts``; a part of one value goes through ``single(value)``."""
    out: Alarms = []
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < x.size), x.size]
    for lo, hi in itertools.pairwise(bounds):
        part = single(float(x[lo])) if hi - lo == 1 else x[lo:hi]
        out += [(lo + a.index, a.kind, a.statistic, a.threshold) for a in det.update(part)]
    return out


def one_by_one(det: Any, x: np.ndarray) -> Alarms:
    out: Alarms = []
    for i, v in enumerate(x.tolist()):
        out += [(i + a.index, a.kind, a.statistic, a.threshold) for a in det.update(v)]
    return out


def assert_same_state(a: Any, b: Any) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and sa["kind"] == sb["kind"] and sa["v"] == sb["v"]
    assert sa["state"].keys() == sb["state"].keys()
    for key, va in sa["state"].items():
        va, vb = np.asarray(va), np.asarray(sb["state"][key])
        assert va.dtype == vb.dtype and va.shape == vb.shape, key
        assert np.array_equal(va, vb, equal_nan=True), (key, va, vb)


SCALARS: list[Callable[[float], Any]] = [
    float,
    np.float64,
    np.float32,  # exact for the values used: 0/1 and (below) values rounded to float32
    lambda v: np.array(v),  # 0-d
    lambda v: np.array([v]),  # size 1
]

streams = st.tuples(
    st.integers(0, 2**31 - 1),  # seed
    st.integers(1, 2500),  # length
    st.integers(50, 1200),  # change point
)


@pytest.mark.parametrize("name", sorted(DETECTORS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=streams, data=st.data())
def test_one_value_at_a_time_matches_batches(
    name: str, spec: tuple[int, int, int], data: Any
) -> None:
    make, family = DETECTORS[name]
    seed, n, change = spec
    x = stream(family, seed, n, change).astype(np.float32).astype(np.float64)
    cuts = data.draw(st.lists(st.integers(0, n), max_size=12))
    single, batched = make(), make()
    a = one_by_one(single, x)
    b = feed(batched, x, cuts, float)
    assert a == b
    assert_same_state(single, batched)
    # interleaved: runs of single values (as various scalar types) and batches
    cuts = data.draw(st.lists(st.integers(0, n), max_size=60))
    kind = data.draw(st.sampled_from(SCALARS))
    mixed = make()
    assert feed(mixed, x, cuts, kind) == a
    assert_same_state(mixed, single)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_state_round_trips_mid_stream(name: str) -> None:
    """A state saved after single values, loaded into a fresh detector, continues identically."""
    make, family = DETECTORS[name]
    x = stream(family, 11, 3000, 900)
    first, rest = x[:1234], x[1234:]
    det = make()
    one_by_one(det, first)
    copy = make()
    copy.load_state_dict(det.state_dict())
    a = one_by_one(det, rest)
    assert a == one_by_one(copy, rest)
    assert_same_state(det, copy)
    reference = make()
    b = feed(reference, x, [1234], float)
    assert [(i - 1234, *r) for i, *r in b if i >= 1234] == a


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_the_streams_make_every_detector_fire(name: str) -> None:
    """The properties above compare alarms that happen: each detector fires on these streams."""
    make, family = DETECTORS[name]
    x = stream(family, 5, 2500, 800)
    alarms = one_by_one(make(), x)
    assert any(kind == "drift" for _, kind, _, _ in alarms)
    assert alarms == feed(make(), x, [100, 777, 1500], float)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_non_finite_values_take_the_batch_path(name: str) -> None:
    make, _ = DETECTORS[name]
    x = np.array([0.0, 1.0, np.nan, 1.0, np.inf, 0.0, -np.inf, 1.0, 0.0] * 5)
    a, b = make(), make()
    assert one_by_one(a, x) == feed(b, x, [], float)
    assert_same_state(a, b)


def test_as_scalar_takes_one_real_number_only() -> None:
    assert as_scalar(2) == 2.0 and type(as_scalar(2)) is float
    assert as_scalar(True) == 1.0
    assert as_scalar(np.float32(0.5)) == 0.5
    assert as_scalar(np.array([[3]])) == 3.0
    assert as_scalar(np.array(7, dtype=np.uint8)) == 7.0
    assert as_scalar([1.0]) is None  # a list goes through the batch path
    assert as_scalar(np.array([1.0, 2.0])) is None
    assert as_scalar(np.array([1 + 2j])) is None
    assert as_scalar(np.array([], dtype=np.float64)) is None


def test_adwin_defers_single_values_until_its_clock_ticks() -> None:
    det = ADWIN(clock=4)
    for v in (0.1, 0.2, 0.3):
        assert det.update(v) == []
    assert len(det._pending) == 3  # not yet in the kernel
    assert det.width == 3  # reading the width feeds them
    assert len(det._pending) == 0
