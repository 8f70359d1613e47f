"""The window checks' statistics: p-values agree with scipy, false alarms per window stay at
most ``alpha`` on fresh stationary data, and real faults are found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from driftd.config import WindowCheckSettings
from driftd.daemon.check_stats import evaluate

NAMES = ["a", "b", "c", "k1", "k2"]
CATEGORICAL = [False, False, False, True, True]


def _data(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    num = rng.normal(size=(n, 3))
    num[:, 0] += shift
    cat = rng.choice([11.0, 22.0, 33.0, 44.0], size=(n, 2), p=[0.4, 0.3, 0.2, 0.1])
    return np.column_stack([num, cat])


def _windows_with_alarms(check: WindowCheckSettings, trials: int, shift: float = 0.0) -> int:
    rng = np.random.default_rng(2026)
    hits = 0
    for _ in range(trials):  # a fresh reference and a fresh window every time
        out = evaluate(check, NAMES, CATEGORICAL, _data(rng, 2_000), _data(rng, 1_000, shift))
        hits += any(o.drift for o in out)
    return hits


def _at_most(alpha: float, trials: int) -> int:
    """The most windows with alarms that a per-window rate of ``alpha`` makes plausible."""
    return int(stats.binom.ppf(0.999, trials, alpha))


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_drift_raises_an_alarm_in_at_most_alpha_of_stationary_windows(correction: str) -> None:
    # floors off: the p-values alone must hold the rate (with floors it is lower still)
    check = WindowCheckSettings(
        check="drift",
        alpha=0.05,
        correction=correction,
        params={"floor": 0.0, "categorical_floor": 0.0},
    )
    trials = 400
    hits = _windows_with_alarms(check, trials)
    assert hits <= _at_most(0.05, trials), f"{hits}/{trials} windows alarmed at alpha 0.05"
    assert hits >= 3, "a test that never rejects controls nothing: p-values are too large"


def test_drift_finds_a_third_of_a_standard_deviation() -> None:
    check = WindowCheckSettings(check="drift", alpha=0.01)
    assert _windows_with_alarms(check, 40, shift=0.33) >= 38


def test_the_ks_p_value_is_scipys() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(3_000, 1)), rng.normal(0.05, 1.0, size=(1_500, 1))
    check = WindowCheckSettings(check="drift", correction="holm", params={"floor": 0.0})
    (o,) = evaluate(check, ["a"], [False], ref, cur)
    want = stats.ks_2samp(ref[:, 0], cur[:, 0], method="asymp")
    assert o.p_value == pytest.approx(want.pvalue, rel=1e-3, abs=1e-6)


def _every_40th(x: np.ndarray, value: float) -> np.ndarray:
    return np.where(np.arange(x.size) % 40 == 0, value, x)


def test_missing_is_fishers_exact_test_and_a_binomial_against_the_floor() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(5_000, 1))
    ref[:5] = np.nan  # 0.1 % missing in the reference
    cur = _every_40th(rng.normal(size=2_000), np.nan)  # 2.5 % in the window
    (o,) = evaluate(WindowCheckSettings(check="missing"), ["x"], [False], ref, cur[:, None])
    k = int(np.isnan(cur).sum())
    fisher = stats.fisher_exact([[k, 2_000 - k], [5, 4_995]], alternative="greater").pvalue
    floor = stats.binomtest(k, 2_000, 0.001, alternative="greater").pvalue
    assert o.p_value == pytest.approx(max(fisher, floor), rel=1e-6)
    assert o.drift and o.statistic == k / 2_000


def test_out_of_range_is_beta_binomial_on_the_reference_order_statistics() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(5_000, 1))
    cur = _every_40th(rng.normal(size=2_000), 50.0)
    (o,) = evaluate(WindowCheckSettings(check="out_of_range"), ["x"], [False], ref, cur[:, None])
    srt = np.sort(ref[:, 0])
    lo, hi = srt[25 - 1], srt[5_000 - 25]  # the 25th from each end: 0.5 % of 5,000
    k = int(((cur < lo) | (cur > hi)).sum())
    assert o.statistic * 2_000 == k and o.threshold == pytest.approx(50 / 5_001)
    assert o.p_value == pytest.approx(stats.betabinom.sf(k - 1, 2_000, 50, 4_951))
    assert o.drift


def test_the_out_of_range_law_is_the_simulated_one() -> None:
    """The count outside two order statistics of a fresh reference, simulated, against the
    beta-binomial law the check uses (a closed form from exchangeability)."""
    rng = np.random.default_rng(8)
    n, m, trials = 200, 100, 20_000
    ref = np.sort(rng.normal(size=(trials, n)), axis=1)
    cur = rng.normal(size=(trials, m))
    k = ((cur < ref[:, [0]]) | (cur > ref[:, [n - 1]])).sum(axis=1)  # a = 2 gaps outside
    law = stats.betabinom(m, 2, n - 1)
    for c in range(4):
        assert np.mean(k == c) == pytest.approx(law.pmf(c), abs=0.01)


def test_unseen_needs_both_the_permutation_test_and_the_binomial_against_the_tolerance() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice([1.0, 2.0, 3.0], size=(5_000, 1))
    cur = _every_40th(rng.choice([1.0, 2.0, 3.0], size=2_000), 99.0)
    (o,) = evaluate(WindowCheckSettings(check="unseen"), ["x"], [True], ref, cur[:, None])
    k = round(o.statistic * 2_000)
    assert k == 50 and o.threshold == 0.001
    binomial = stats.binomtest(k, 2_000, 0.001, alternative="greater").pvalue
    # no random split of the pool puts all 50 of one category in the window: 1 / (1 + 999)
    assert o.p_value == pytest.approx(max(binomial, 1 / 1_000))
    assert o.drift


@pytest.mark.parametrize("kind", ["missing", "out_of_range", "unseen"])
def test_rate_checks_hold_alpha_per_window_on_stationary_data(kind: str) -> None:
    rng = np.random.default_rng(5)
    check = WindowCheckSettings(check=kind, alpha=0.05)
    trials, hits = 300, 0
    for _ in range(trials):
        ref, cur = rng.normal(size=(4_000, 3)), rng.normal(size=(1_000, 3))
        if kind == "missing":  # 2 % missing on both sides
            ref[rng.random(ref.shape) < 0.02] = np.nan
            cur[rng.random(cur.shape) < 0.02] = np.nan
        if kind == "unseen":  # many categories: some of the window's are new by chance
            ref, cur = np.floor(ref * 30), np.floor(cur * 30)
        hits += any(o.drift for o in evaluate(check, ["x", "y", "z"], [False] * 3, ref, cur))
    assert hits <= _at_most(0.05, trials), f"{kind}: {hits}/{trials}"


def test_multivariate_holds_alpha_and_sees_a_correlation() -> None:
    check = WindowCheckSettings(
        check="multivariate", alpha=0.1, min_rows=50, params={"n_permutations": 200}
    )
    rng = np.random.default_rng(6)
    trials, hits = 60, 0
    for _ in range(trials):
        out = evaluate(check, [], [], rng.normal(size=(300, 3)), rng.normal(size=(300, 3)))
        hits += out[0].drift
    assert hits <= _at_most(0.1, trials)
    x = rng.normal(size=(300, 3))
    x[:, 1] = 0.9 * x[:, 0] + np.sqrt(0.19) * x[:, 1]
    assert evaluate(check, [], [], rng.normal(size=(300, 3)), x)[0].drift
