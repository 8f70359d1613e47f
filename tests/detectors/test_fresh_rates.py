"""rates: the fresh-stream false-alarm harness against closed forms, and its restart semantics.

A toy detector whose run length after each (re)start is known exactly (``warm`` values, then a
geometric wait for a value above ``c``) gives the expected alarm count over fresh streams by a
small Markov-chain recursion; the harness's count must be a plausible Poisson draw around it
(0.1% each side). Without restarts the count would be about twice as large, so the check
catches a harness that does not restart the detector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from driftd.detectors.adwin import ADWIN
from driftd.detectors.base import Alarm, Detector
from driftd.detectors.cusum import CUSUM
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.page_hinkley import PageHinkley
from driftd.detectors.rates import (
    GENERATORS,
    FreshRate,
    count_alarms,
    dispersion,
    fresh_rate,
    fresh_streams,
    gaussian,
    poisson_interval,
    stream_sizes,
)

TAIL = 0.001
WARM, C = 50, 2.0
Q = float(stats.norm.sf(C))  # P(a value fires once armed)


class Toy:
    """Fires a drift on a value above ``C`` once ``WARM`` values have been seen since a (re)start;
    a warning on such a value during the warm-up. ``self_reset=False``: never resets itself."""

    def __init__(self, self_reset: bool = True) -> None:
        self.self_reset = self_reset
        self.reset()

    def reset(self) -> None:
        self._n = 0

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        out = []
        for i, v in enumerate(np.asarray(values, dtype=np.float64).tolist()):
            self._n += 1
            if v > C:
                armed = self._n > WARM
                out.append(Alarm("Toy", i, v, C, "drift" if armed else "warning"))
                if armed and self.self_reset:
                    self.reset()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"n": self._n}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._n = int(state["n"])


def _expected_toy_alarms(horizon: int) -> float:
    """Exact expected drifts of Toy over one fresh stream, restarted after each drift."""
    p = np.zeros(WARM + 1)  # p[j]: P(j values seen since the last (re)start), j capped at WARM
    p[0] = 1.0
    expected = 0.0
    for _ in range(horizon):
        fire = p[WARM] * Q  # armed: this value is the (WARM+1)-th or later since the restart
        expected += fire
        nxt = np.zeros_like(p)
        nxt[1:] = p[:-1]
        nxt[WARM] += p[WARM] * (1 - Q)
        nxt[0] = fire
        p = nxt
    return expected


def _plausible(count: int, mean: float) -> bool:
    low, high = stats.poisson.ppf(TAIL, mean), stats.poisson.ppf(1 - TAIL, mean)
    return bool(low <= count <= high)


@pytest.mark.parametrize("rebuild", [False, True])
def test_toy_detector_matches_its_exact_fresh_rate(rebuild: bool) -> None:
    horizon, n = 2_000, 200_000
    per_stream = _expected_toy_alarms(horizon)
    exact = per_stream * (n / horizon) * 1e5 / n
    without_restarts = Q * (horizon - WARM) * 1e5 / horizon
    assert without_restarts > 1.8 * exact  # the check below tells the two apart

    def make() -> Detector:
        return Toy(self_reset=not rebuild)  # rebuild: the harness must restart it

    r = fresh_rate(make, gaussian, horizon=horizon, n_values=n, seed=3, rebuild=rebuild)
    assert (r.n_streams, r.n_values, r.horizon) == (100, n, horizon)
    assert _plausible(r.false_alarms, exact * n / 1e5), (r, exact)
    assert r.interval[0] <= exact <= r.interval[1]
    assert r.rate_per_100k == pytest.approx(r.false_alarms * 1e5 / n)


def test_a_detector_that_does_not_reset_needs_rebuild() -> None:
    kw: dict[str, Any] = {"horizon": 2_000, "n_values": 20_000, "seed": 3}
    kept = fresh_rate(lambda: Toy(self_reset=False), gaussian, **kw).false_alarms
    rebuilt = fresh_rate(lambda: Toy(self_reset=False), gaussian, rebuild=True, **kw).false_alarms
    self_reset = fresh_rate(Toy, gaussian, **kw).false_alarms
    assert rebuilt == self_reset  # same values, same restarts
    assert kept > 1.5 * rebuilt


@pytest.mark.parametrize("count", [0, 1, 5, 37, 400])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_poisson_interval_is_garwoods(count: int, confidence: float) -> None:
    """The ends are the means at which the observed count is just in the tail (scipy's Poisson)."""
    n, tail = 250_000, (1 - confidence) / 2
    low, high = poisson_interval(count, n, confidence)
    mu_low, mu_high = low * n / 1e5, high * n / 1e5
    assert stats.poisson.cdf(count, mu_high) == pytest.approx(tail, rel=1e-6)
    if count == 0:
        assert low == 0.0
    else:
        assert stats.poisson.sf(count - 1, mu_low) == pytest.approx(tail, rel=1e-6)


def _changing(kind: str) -> Callable[[np.random.Generator, int], np.ndarray]:
    """A non-stationary stream (a shift every 1,000 values), so that every detector alarms."""

    def generate(rng: np.random.Generator, n: int) -> np.ndarray:
        on = (np.arange(n) // 1_000) % 2 == 1
        if kind == "bern":
            return (rng.random(n) < np.where(on, 0.4, 0.05)).astype(np.float64)
        return rng.standard_normal(n) + np.where(on, 1.5, 0.0)

    return generate


BUILTIN: dict[str, tuple[Callable[[], Detector], str]] = {
    "ADWIN": (ADWIN, "gauss"),
    "PageHinkley": (lambda: PageHinkley(threshold=20.0), "gauss"),
    "CUSUM": (CUSUM, "gauss"),
    "DDM": (DDM, "bern"),
    "EDDM": (EDDM, "bern"),
    "HDDM_A": (HDDM_A, "bern"),
    "HDDM_W": (HDDM_W, "bern"),
    "KSWIN": (KSWIN, "gauss"),
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_detectors_restart_fresh_after_a_drift(name: str) -> None:
    """Following a detector's own reset equals building a new one after each drift, any batch."""
    make, kind = BUILTIN[name]
    streams = list(fresh_streams(_changing(kind), horizon=10_000, n_values=30_000, seed=1))
    own = count_alarms(make, streams)
    rebuilt = count_alarms(make, streams, rebuild=True, batch=3_001)
    assert own.sum() >= 10  # the comparison means something
    assert own.tolist() == rebuilt.tolist()


def test_streams_are_fixed_by_seed_and_index() -> None:
    gen = GENERATORS["gaussian"]
    short = list(fresh_streams(gen, horizon=1_000, n_values=2_500, seed=4))
    long = list(fresh_streams(gen, horizon=1_000, n_values=5_000, seed=4))
    other = list(fresh_streams(gen, horizon=1_000, n_values=2_500, seed=5))
    assert [s.size for s in short] == [1_000, 1_000, 500] == stream_sizes(2_500, 1_000)
    assert np.array_equal(short[1], long[1]) and np.array_equal(short[2], long[2][:500])
    assert not np.array_equal(short[0], other[0]) and not np.array_equal(short[0], short[1])


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_have_their_moments(name: str) -> None:
    x = GENERATORS[name](np.random.default_rng(0), 400_000)
    if name.startswith("bernoulli"):
        p = float(name.split("-")[1])
        assert set(np.unique(x).tolist()) == {0.0, 1.0}
        assert x.mean() == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / x.size))
    else:
        assert x.mean() == pytest.approx(0.0, abs=0.01)
        assert x.var() == pytest.approx(1.0, rel=0.05 if name == "student-t3" else 0.01)
        kurt = float(stats.kurtosis(x))
        assert (kurt > 2.0) if name in ("student-t3", "laplace") else abs(kurt) < 0.05


def test_dispersion_flags_extra_variance() -> None:
    rng = np.random.default_rng(0)
    sizes = [1_000] * 200
    poisson = rng.poisson(5.0, 200)
    clustered = rng.poisson(5.0, 200) * rng.integers(0, 2, 200) * 2  # same mean, more spread
    assert 0.6 < dispersion(poisson, sizes) < 1.5
    assert dispersion(clustered, sizes) > 3.0
    assert math.isnan(dispersion(poisson[:1], sizes[:1]))
    assert dispersion(np.zeros(5, dtype=np.int64), [10] * 5) == 1.0


def test_stop_above_stops_after_the_stream_that_crosses() -> None:
    streams = list(fresh_streams(_changing("gauss"), horizon=5_000, n_values=50_000, seed=2))
    full = count_alarms(CUSUM, streams)
    stopped = count_alarms(CUSUM, streams, stop_above=int(full[:3].sum()) - 1)
    assert stopped.tolist() == full[:3].tolist()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"horizon": 0}, "horizon="),
        ({"n_values": 0}, "n_values="),
        ({"batch": 0}, "batch="),
        ({"seed": -1}, "seed="),
        ({"confidence": 1.0}, "confidence="),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        fresh_rate(CUSUM, gaussian, **kwargs)


def test_result_type() -> None:
    r = fresh_rate(CUSUM, gaussian, horizon=5_000, n_values=12_000, seed=0)
    assert isinstance(r, FreshRate) and r.n_streams == 3 and r.confidence == 0.95
