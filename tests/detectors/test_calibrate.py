"""calibrate(): a threshold calibrated on a bootstrapped reference meets its target on fresh data.

The fresh-data check allows for two sources of noise: the Poisson count on the fresh stream and
the calibration's own error (its rate is measured from about ``K = target * n / 100,000``
alarms, a relative error of ``1/sqrt(K)``), so the fresh count ``C`` with expectation ``λ`` has
variance about ``λ + λ²/K``, times the dispersion calibrate() reports where alarms cluster;
it must lie within 3.29 standard deviations (0.1% two-sided).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from driftd.detectors.base import Detector
from driftd.detectors.calibrate import (
    THRESHOLDS,
    Calibration,
    block_bootstrap,
    calibrate,
    count_drifts,
    poisson_interval,
)
from driftd.detectors.cusum import CUSUM
from driftd.detectors.page_hinkley import PageHinkley

Z = 3.29  # 0.1% two-sided


def _gaussian(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, n)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return _gaussian(11, 50_000)


def _known_cusum(v: float) -> CUSUM:
    return CUSUM(target=0.0, scale=1.0, threshold=v)


FACTORIES: dict[str, Callable[[float], Detector]] = {
    "PageHinkley": THRESHOLDS["PageHinkley"].build,
    "CUSUM": THRESHOLDS["CUSUM"].build,  # re-estimates target and scale: clustered alarms
    "CUSUM-known": _known_cusum,
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_calibrated_rate_holds_on_fresh_data(name: str, reference: np.ndarray) -> None:
    target, n_cal, n_fresh = 10.0, 1_000_000, 1_000_000
    build = FACTORIES[name]
    cal = calibrate(
        build, reference, target, rate_rises=False, bounds=(0.5, 1e4), n_samples=n_cal, block=20
    )
    assert cal.rate_per_100k <= target
    assert cal.false_alarms >= 0.5 * target * n_cal / 100_000  # the bisection got close
    fresh = int(count_drifts(build(cal.threshold), _gaussian(99, n_fresh)).sum())
    lam = target * n_fresh / 100_000
    k = target * n_cal / 100_000
    sd = math.sqrt(max(1.0, cal.dispersion) * (lam + lam * lam / k))
    assert lam - Z * sd <= fresh <= lam + Z * sd, (cal, fresh)


def test_dispersion_flags_clustered_alarms(reference: np.ndarray) -> None:
    kw: dict[str, Any] = {"n_samples": 1_000_000, "block": 20}
    assert calibrate("CUSUM", reference, 10.0, **kw).dispersion > 2.5
    assert calibrate("PageHinkley", reference, 10.0, **kw).dispersion < 2.5


@pytest.mark.parametrize("name", ["PageHinkley", "CUSUM"])
def test_higher_target_gives_lower_threshold(name: str, reference: np.ndarray) -> None:
    kw: dict[str, Any] = {"n_samples": 200_000, "seed": 5, "rtol": 1e-3}
    strict = calibrate(name, reference, 5.0, **kw)
    loose = calibrate(name, reference, 50.0, **kw)
    assert loose.threshold < strict.threshold
    assert loose.false_alarms >= strict.false_alarms


def test_rising_parameter_moves_the_other_way() -> None:
    ref = (np.random.default_rng(4).random(20_000) < 0.1).astype(np.float64)
    kw: dict[str, Any] = {"n_samples": 200_000, "seed": 5, "rtol": 1e-2}
    strict = calibrate("HDDM_A", ref, 5.0, **kw)
    loose = calibrate("HDDM_A", ref, 50.0, **kw)
    assert strict.parameter == "drift_confidence"
    assert loose.threshold > strict.threshold
    assert loose.rate_per_100k <= 50.0 and strict.rate_per_100k <= 5.0


def test_deterministic_for_a_seed(reference: np.ndarray) -> None:
    kw: dict[str, Any] = {"n_samples": 200_000, "rtol": 1e-3}
    a = calibrate("PageHinkley", reference, 20.0, seed=7, **kw)
    b = calibrate("PageHinkley", reference, 20.0, seed=7, **kw)
    c = calibrate("PageHinkley", reference, 20.0, seed=8, **kw)
    assert (a.threshold, a.false_alarms, a.interval) == (b.threshold, b.false_alarms, b.interval)
    assert a.threshold != c.threshold


def test_class_and_factory_forms_agree(reference: np.ndarray) -> None:
    kw: dict[str, Any] = {"n_samples": 100_000, "seed": 1, "rtol": 1e-2}
    by_name = calibrate("CUSUM", reference, 50.0, **kw)
    by_class = calibrate(CUSUM, reference, 50.0, **kw)
    by_keyword = calibrate(
        CUSUM, reference, 50.0, threshold="threshold", rate_rises=False, bounds=(0.5, 200.0), **kw
    )
    by_factory = calibrate(
        lambda v: CUSUM(threshold=v), reference, 50.0, rate_rises=False, bounds=(0.5, 200.0), **kw
    )
    assert by_name.threshold == by_class.threshold == by_keyword.threshold
    assert by_factory.threshold == by_name.threshold and by_factory.parameter is None
    assert isinstance(by_name.detector, CUSUM) and by_name.detector.threshold == by_name.threshold


def test_result_fields(reference: np.ndarray) -> None:
    cal = calibrate(PageHinkley, reference, 30.0, n_samples=100_000, seed=2, rtol=1e-2)
    assert isinstance(cal, Calibration)
    assert cal.parameter == "threshold" and cal.n_values == 100_000
    assert cal.rate_per_100k == cal.false_alarms  # n_values is 100,000
    low, high = cal.interval
    assert low <= cal.rate_per_100k <= high
    assert isinstance(cal.detector, PageHinkley) and cal.detector.threshold == cal.threshold


def test_poisson_interval_is_exact() -> None:
    low, high = poisson_interval(0, 100_000, 0.95)
    assert low == 0.0 and high == pytest.approx(-math.log(0.025))
    low, high = poisson_interval(10, 1_000_000, 0.95)
    assert low == pytest.approx(0.4795, abs=1e-3) and high == pytest.approx(1.8390, abs=1e-3)


def test_block_bootstrap_keeps_blocks() -> None:
    ref = np.arange(1000, dtype=np.float64)
    out = block_bootstrap(ref, 1003, 10, np.random.default_rng(0))
    assert out.size == 1003
    runs = out[:1000].reshape(-1, 10)
    assert (np.diff(runs, axis=1) == 1).all()
    assert out.max() <= 999


def test_registry_builds_valid_detectors() -> None:
    for spec in THRESHOLDS.values():
        lo, hi = spec.bounds
        for v in (lo, math.sqrt(lo * hi), hi):
            det = spec.build(v)
            assert getattr(det, spec.parameter) == v


def test_bounds_that_cannot_reach_the_target(reference: np.ndarray) -> None:
    with pytest.raises(ValueError, match="bounds="):
        calibrate("CUSUM", reference, 1.0, bounds=(0.5, 1.0), n_samples=100_000)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("NoSuch", None, 1.0), {}, "detector="),
        ((PageHinkley, None, 0.0), {}, "target_false_alarms_per_100k="),
        ((PageHinkley, None, math.nan), {}, "target_false_alarms_per_100k="),
        ((PageHinkley, None, 1.0), {"n_samples": 1000}, "n_samples="),
        ((PageHinkley, None, 1.0), {"n_samples": 0}, "n_samples="),
        ((PageHinkley, None, 1.0), {"block": 0}, "block="),
        ((PageHinkley, None, 1.0), {"seed": -1}, "seed="),
        ((PageHinkley, None, 1.0), {"rtol": 0.0}, "rtol="),
        ((PageHinkley, None, 1.0), {"confidence": 1.0}, "confidence="),
        ((PageHinkley, None, 1.0), {"bounds": (5.0, 1.0)}, "bounds="),
        ((PageHinkley, None, 1.0), {"bounds": (0.0, 1.0)}, "bounds="),
        ((PageHinkley, None, 1.0), {"threshold": "delta"}, "rate_rises="),
        ((PageHinkley, None, 1.0), {"threshold": "delta", "rate_rises": False}, "bounds="),
        ((object, None, 1.0), {}, "threshold="),
        ((lambda v: CUSUM(threshold=v), None, 1.0), {}, "rate_rises="),
        ((PageHinkley, np.zeros(10), 1.0), {"block": 50}, "reference="),
        ((PageHinkley, np.array([0.0, np.inf, 1.0]), 1.0), {"block": 1}, "reference="),
    ],
)
def test_bad_arguments_name_the_argument(
    args: tuple[Any, Any, float], kwargs: dict[str, Any], name: str, reference: np.ndarray
) -> None:
    det, ref, target = args
    with pytest.raises(ValueError, match=name):
        calibrate(det, reference if ref is None else ref, target, **kwargs)
