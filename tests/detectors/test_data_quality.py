"""Data-quality detectors: false-alarm rate on stationary data, power, windows, state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.stats import binom

from driftd.detectors.data_quality import (
    MISSING,
    MissingRate,
    OutOfRange,
    TypeErrorRate,
    UnseenCategories,
    critical_count,
)
from driftd.errors import StateVersionError

ALPHA = 0.05


def _run(det: Any, stream: np.ndarray, batch: int) -> list[tuple[int, str, float]]:
    """Alarms as (index in the whole stream, detector, statistic)."""
    out = []
    for start in range(0, len(stream), batch):
        out += [
            (start + a.index, a.detector, a.statistic)
            for a in det.update(stream[start : start + batch])
        ]
    return out


def _assert_rate_within(alarmed_windows: int, windows: int, alpha: float) -> None:
    """Not significantly above ``alpha`` (one-sided binomial test at 0.001)."""
    assert binom.sf(alarmed_windows - 1, windows, alpha) > 1e-3, (alarmed_windows, windows)


def _missing_numeric(rng: np.random.Generator, n: int, rate: float, d: int = 3) -> np.ndarray:
    x = rng.normal(size=(n, d))
    x[rng.random((n, d)) < rate] = np.nan
    return x


def _missing_codes(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    c = rng.integers(0, 5, n).astype(np.int32)
    c[rng.random(n) < rate] = MISSING
    return c


def _unseen_codes(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    c = rng.integers(0, 8, (n, 2))
    c = np.where(rng.random((n, 2)) < rate, 100 + rng.integers(0, 5, (n, 2)), c)
    c[rng.random((n, 2)) < 0.1] = MISSING
    return c


CASES: dict[str, tuple[Callable[[np.ndarray], Any], Callable[..., np.ndarray], float, float]] = {
    # name: (factory from reference, generator(rng, n, rate), null rate, shifted rate)
    "missing_numeric": (
        lambda ref: MissingRate(ref, alpha=ALPHA, window=500),
        _missing_numeric,
        0.05,
        0.09,
    ),
    "missing_codes": (
        lambda ref: MissingRate(ref, alpha=ALPHA, window=500),
        _missing_codes,
        0.02,
        0.05,
    ),
    "out_of_range": (
        lambda ref: OutOfRange(ref, alpha=ALPHA, window=1_000),
        lambda rng, n, shift: rng.normal(shift, 1.0, size=(n, 4)),
        0.0,
        0.5,
    ),
    "unseen": (
        lambda ref: UnseenCategories(
            np.where(ref >= 100, 0, ref), tolerance=0.01, alpha=ALPHA, window=500
        ),
        _unseen_codes,
        0.01,
        0.04,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_false_alarm_rate_on_stationary_data_is_within_alpha(name: str) -> None:
    make, gen, null, _ = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    det = make(gen(rng, 200_000, null))
    stream = gen(rng, 1_000_000, null)
    alarms = _run(det, stream, 100_000)
    windows = len(stream) // det.window
    alarmed = len({i // det.window for i, _, _ in alarms})
    _assert_rate_within(alarmed, windows, ALPHA)
    assert alarmed > 0  # not vacuous: at the null rate it does fire, just rarely


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_shift_alarms_in_most_windows(name: str) -> None:
    make, gen, null, shifted = CASES[name]
    rng = np.random.default_rng(1)
    det = make(gen(rng, 200_000, null))
    stream = gen(rng, 50 * det.window, shifted)
    alarmed = len({i // det.window for i, _, _ in _run(det, stream, 10_000)})
    assert alarmed >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_alarms_do_not_depend_on_batch_sizes(name: str) -> None:
    make, gen, null, shifted = CASES[name]
    rng = np.random.default_rng(2)
    ref = gen(rng, 20_000, null)
    stream = np.concatenate([gen(rng, 3_000, null), gen(rng, 3_000, shifted)])
    runs = [_run(make(ref), stream, b) for b in (1, 37, 999, 6_000)]
    assert runs[0]
    assert all(r == runs[0] for r in runs[1:])


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_round_trip_mid_window_and_reset(name: str) -> None:
    make, gen, null, shifted = CASES[name]
    rng = np.random.default_rng(3)
    ref = gen(rng, 20_000, null)
    stream = np.concatenate([gen(rng, 2_250, null), gen(rng, 3_000, shifted)])
    a = make(ref)
    a.update(stream[:2_250])
    b = make(gen(rng, 20_000, shifted))  # a different reference: the state replaces it
    b.load_state_dict(a.state_dict())
    rest = stream[2_250:].copy()
    assert _run(a, rest, 1_000) == _run(b, rest, 500)
    assert np.array_equal(rest, stream[2_250:], equal_nan=True)  # input not modified
    with pytest.raises(StateVersionError):
        b.load_state_dict({**a.state_dict(), "v": 2})
    a.update(stream[:10])
    a.reset()
    assert a.rows == 0 and not a.flagged.any()
    fresh = make(ref)
    assert _run(a, stream, 777) == _run(fresh, stream, 777)


def test_alarm_fields_name_the_column_and_the_window_end() -> None:
    rng = np.random.default_rng(4)
    det = MissingRate(_missing_numeric(rng, 50_000, 0.0), window=100)
    x = _missing_numeric(rng, 300, 0.0)
    x[150:170, 2] = np.nan
    (alarm,) = det.update(x)
    assert (alarm.detector, alarm.index, alarm.statistic) == ("MissingRate[2]", 199, 0.2)
    crit = int(critical_count(100, 0.001, 0.01 / 3))
    assert alarm.threshold == crit / 100


def test_critical_count_controls_the_binomial_tail() -> None:
    n, p0 = np.array([10, 100, 1_000, 10_000]), 0.03
    c = critical_count(n, p0, 0.01)
    assert np.all(binom.sf(c - 1, n, p0) <= 0.01)
    assert np.all(binom.sf(c - 2, n, p0) > 0.01)  # the smallest such count


def test_type_error_rate_false_alarms_and_power() -> None:
    rng = np.random.default_rng(5)
    totals = rng.integers(500, 5_000, 20_000)
    det = TypeErrorRate(max_rate=0.002, alpha=ALPHA)
    _assert_rate_within(len(det.update(rng.binomial(totals, 0.002), totals)), totals.size, ALPHA)
    hits = det.update(rng.binomial(totals[:100], 0.01), totals[:100])
    assert len(hits) >= 95
    assert det.update([0], [0]) == []  # an empty window is not evidence
    clone = TypeErrorRate()
    clone.load_state_dict(det.state_dict())
    assert (clone.max_rate, clone.alpha) == (0.002, ALPHA)


def test_invalid_parameters_are_refused_with_the_valid_range() -> None:
    ref = np.zeros(10)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        MissingRate(ref, alpha=0.0)
    with pytest.raises(ValueError, match="window"):
        OutOfRange(ref, window=0)
    with pytest.raises(ValueError, match="q_low < q_high"):
        OutOfRange(ref, q_low=0.9, q_high=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        UnseenCategories(ref.astype(int), tolerance=1.5)
    with pytest.raises(ValueError, match=r"columns \[1\]"):
        OutOfRange(np.column_stack([ref, np.full(10, np.nan)]))
    with pytest.raises(ValueError, match="float or integer"):
        MissingRate(np.array(["a"]))
    with pytest.raises(ValueError, match="built for 1 columns"):
        MissingRate(ref).update(np.zeros((5, 2)))
