"""The always-valid rate tests: closed forms, inversion, shrinking, and type-I error / coverage
at the worst stopping time (the supremum over the whole run) over many seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from driftd.rollout.sequential import (
    DEFAULT_RATIOS,
    Side,
    log_mixture_lr,
    odds_shift,
    rate_ceiling_test,
    rate_difference_cs,
    rate_test,
)

ALPHA = 0.05
LOG_BOUND = math.log(1 / ALPHA)


def _max_rate(n: int, alpha: float = ALPHA) -> int:
    """Most rejections out of n seeds compatible with a true rate <= alpha (one-sided 0.1%)."""
    return int(binom.ppf(0.999, n, alpha))


def test_single_ratio_is_the_sprt_closed_form() -> None:
    pi0, r = 0.1, 3.0
    p1 = odds_shift(pi0, r)
    a, b = math.log(p1 / pi0), math.log((1 - p1) / (1 - pi0))
    for k in (1, 10, 57, 400):
        # SPRT boundary: x a + (k - x) b >= ln(1/alpha)  <=>  x >= (ln(1/alpha) - k b) / (a - b)
        boundary = math.ceil((LOG_BOUND - k * b) / (a - b) - 1e-12)
        for x in range(k + 1):
            lr = log_mixture_lr(x, k, pi0, (r,))
            assert math.isclose(lr, x * a + (k - x) * b, abs_tol=1e-9)
            assert (lr >= LOG_BOUND) == (x >= boundary)


def test_mixture_is_the_average_of_event_by_event_products() -> None:
    rng = np.random.default_rng(0)
    events = rng.random(300) < 0.2
    pi0 = 0.1
    prods = np.ones(len(DEFAULT_RATIOS))
    for e in events:
        for j, r in enumerate(DEFAULT_RATIOS):
            p1 = odds_shift(pi0, r)
            prods[j] *= p1 / pi0 if e else (1 - p1) / (1 - pi0)
    got = log_mixture_lr(int(events.sum()), len(events), pi0)
    assert math.isclose(got, math.log(prods.mean()), rel_tol=1e-9)
    less = log_mixture_lr(int(events.sum()), len(events), 0.3, side="less")
    assert less > LOG_BOUND  # 20% observed is clearly below 30%


def test_no_data_is_no_evidence() -> None:
    assert log_mixture_lr(0, 0, 0.1) == 0.0
    assert not rate_test(0, 0, 5, 1000).reject
    assert rate_difference_cs(0, 0, 5, 1000) == (-1.0, 1.0)
    assert not rate_ceiling_test(0, 0, 0.01).reject


def test_cs_agrees_with_the_test_and_contains_the_estimate() -> None:
    x_c, n_c, x_b, n_b = 40, 2000, 90, 18000
    lo, hi = rate_difference_cs(x_c, n_c, x_b, n_b)
    est = x_c / n_c - x_b / n_b
    assert lo < est < hi
    for m in np.linspace(-0.004, 0.03, 23):
        assert (
            rate_test(x_c, n_c, x_b, n_b, margin=float(m)).reject == (lo > m + 1e-6)
            or abs(lo - m) < 1e-5
        )
        assert (
            rate_test(x_c, n_c, x_b, n_b, margin=float(m), side="less").reject == (hi < m - 1e-6)
            or abs(hi - m) < 1e-5
        )


def test_cs_shrinks_monotonely_with_more_data() -> None:
    widths = []
    for scale in (1, 2, 4, 8, 16, 32):
        lo, hi = rate_difference_cs(10 * scale, 1000 * scale, 45 * scale, 9000 * scale)
        assert lo < 0.005 < hi
        widths.append(hi - lo)
    assert all(a > b for a, b in itertools.pairwise(widths))
    assert widths[-1] < 0.3 * widths[0]


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 500), pi0=st.floats(0.01, 0.9), x=st.integers(0, 500))
def test_evidence_grows_with_bad_events(k: int, pi0: float, x: int) -> None:
    x = min(x, k - 1)
    assert log_mixture_lr(x + 1, k, pi0) >= log_mixture_lr(x, k, pi0)
    assert log_mixture_lr(x + 1, k, pi0, side="less") <= log_mixture_lr(x, k, pi0, side="less")


def _streams(
    rng: np.random.Generator, seeds: int, steps: int, p_c: np.ndarray, p_b: np.ndarray, w: float
) -> tuple[np.ndarray, ...]:
    """Cumulative (x_c, n_c, x_b, n_b), shape (seeds, steps): 10-s batches at 100 rps."""
    n = rng.poisson(1000, (seeds, steps))
    nc = rng.binomial(n, w)
    xc = rng.binomial(nc, p_c)
    xb = rng.binomial(n - nc, p_b)
    return tuple(np.cumsum(a, axis=1) for a in (xc, nc, xb, n - nc))


def _sup_rejections(cum: tuple[np.ndarray, ...], margin: float, side: str) -> int:
    xc, nc, xb, nb = cum
    hits = 0
    for s in range(xc.shape[0]):
        for t in range(xc.shape[1]):
            args = (int(xc[s, t]), int(nc[s, t]), int(xb[s, t]), int(nb[s, t]))
            if rate_test(*args, margin=margin, side=side).reject:  # type: ignore[arg-type]
                hits += 1
                break
    return hits


def test_false_rollback_at_the_worst_stopping_time_is_at_most_alpha() -> None:
    """canary = champion, 500 seeds x 30 min checked every 10 s: P(ever reject) <= alpha."""
    seeds = 500
    cum = _streams(np.random.default_rng(1), seeds, 180, np.array(0.005), np.array(0.005), 0.1)
    assert _sup_rejections(cum, 0.0, "greater") <= _max_rate(seeds)


def test_validity_survives_a_common_drift_of_the_error_rate() -> None:
    """Both arms' rate swings 0.2% .. 2% over time (an incident hits both): still <= alpha."""
    seeds, steps = 300, 180
    p = 0.011 + 0.009 * np.sin(np.linspace(0, 6 * math.pi, steps))
    cum = _streams(np.random.default_rng(2), seeds, steps, p, p, 0.1)
    assert _sup_rejections(cum, 0.0, "greater") <= _max_rate(seeds)


def test_coverage_of_both_bounds_at_the_worst_stopping_time() -> None:
    """True difference 0.5 points (1% vs 0.5%): lower > truth, or upper < truth, ever, in at
    most alpha of the seeds each (the margin is plugged in through the champion's rate)."""
    seeds = 300
    cum = _streams(np.random.default_rng(3), seeds, 180, np.array(0.01), np.array(0.005), 0.1)
    assert _sup_rejections(cum, 0.005, "greater") <= _max_rate(seeds)
    assert _sup_rejections(cum, 0.005, "less") <= _max_rate(seeds)


def test_power_on_a_fourfold_error_rate() -> None:
    seeds = 100
    cum = _streams(np.random.default_rng(4), seeds, 18, np.array(0.02), np.array(0.005), 0.1)
    assert _sup_rejections(cum, 0.0, "greater") >= 97  # within 3 minutes


def test_ceiling_test_is_valid_and_powerful() -> None:
    rng = np.random.default_rng(5)
    seeds, steps = 300, 180
    for p, expect_reject in ((0.01, False), (0.03, True)):
        x = np.cumsum(rng.binomial(100, p, (seeds, steps)), axis=1)
        hits = sum(
            any(rate_ceiling_test(int(x[s, t]), 100 * (t + 1), 0.01).reject for t in range(steps))
            for s in range(seeds)
        )
        if expect_reject:
            assert hits >= 0.95 * seeds
        else:
            assert hits <= _max_rate(seeds)


def test_no_bad_events_bound_nothing() -> None:
    # with no bad event in either arm neither side can be rejected: the bounds stay at (-1, 1)
    assert rate_difference_cs(0, 50, 0, 500) == (-1.0, 1.0)
    assert rate_difference_cs(0, 5000, 0, 50000) == (-1.0, 1.0)


@pytest.mark.parametrize(("alpha", "ratios"), [(0.01, DEFAULT_RATIOS), (0.05, (2.0,))])
def test_cs_uses_the_given_alpha_and_ratios(alpha: float, ratios: tuple[float, ...]) -> None:
    x_c, n_c, x_b, n_b = 40, 2000, 90, 18000
    lo, hi = rate_difference_cs(x_c, n_c, x_b, n_b, alpha=alpha, ratios=ratios)
    assert (lo, hi) != rate_difference_cs(x_c, n_c, x_b, n_b)

    def rejects(margin: float, side: Side) -> bool:
        test = rate_test(x_c, n_c, x_b, n_b, margin=margin, alpha=alpha, side=side, ratios=ratios)
        return test.reject

    # each bound is where the test with the same alpha and ratios starts to reject
    assert rejects(lo - 1e-5, "greater") and not rejects(lo + 1e-5, "greater")
    assert rejects(hi + 1e-5, "less") and not rejects(hi - 1e-5, "less")


def test_a_smaller_alpha_widens_the_cs() -> None:
    lo, hi = rate_difference_cs(40, 2000, 90, 18000)
    lo_1, hi_1 = rate_difference_cs(40, 2000, 90, 18000, alpha=0.01)
    assert lo_1 < lo and hi_1 > hi
