"""The canary's always-valid bound holds for any share schedule and any common-rate path.

Hypothesis draws a schedule family (when the canary's share changes and to what; the common
error rate's baseline and its storms, on both arms at once), and for each family 500 seeds of
identical arms are simulated batch by batch. The rollback test is read at its worst stopping
time (the supremum over the whole run): the fraction of seeds whose e-process ever reaches
1/alpha must stay within alpha plus binomial noise. The pooled form (cumulative share plugged
in) fails the same check on a storm during a later step: the reason the rules stratify.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from driftd.rollout.evidence import ERRORS, SLO, ArmCounts, Batch, Evidence
from driftd.rollout.rules import SequentialRule
from driftd.rollout.sequential import (
    GRID,
    ROLLBACK_STEPS,
    grid_index,
    rate_test,
    strata_increment,
    stratified_test,
)

ALPHA = 0.05
SEEDS = 500
BATCHES = 120  # 10-s batches: 20 minutes
F64 = npt.NDArray[np.float64]


def simulate(
    shares: F64, rates: F64, requests: F64, seed: int
) -> tuple[npt.NDArray[np.int64], ...]:
    """Per seed and batch: canary requests, champion requests, canary and champion errors;
    both arms share the batch's error rate (the null: identical every batch)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(requests, (SEEDS, len(shares)))
    n_c = rng.binomial(n, shares)
    n_b = n - n_c
    return n_c, n_b, rng.binomial(n_c, rates), rng.binomial(n_b, rates)


def sup_log_e(n_c: npt.NDArray[np.int64], n_b: npt.NDArray[np.int64],
              x_c: npt.NDArray[np.int64], x_b: npt.NDArray[np.int64]) -> F64:  # fmt: skip
    """Per seed, the largest log e-value of the stratified rollback test over the run (ψ0 = 1),
    built from driftd's own strata increments and grid."""
    i0 = grid_index(1.0, "greater")
    idx = np.array([i0 + j for j in ROLLBACK_STEPS])
    log_r = np.log(GRID[idx])
    g = np.zeros((n_c.shape[0], len(idx)))
    g0 = np.zeros(n_c.shape[0])
    xc_cum = np.zeros(n_c.shape[0])
    best = np.full(n_c.shape[0], -np.inf)
    for t in range(n_c.shape[1]):
        tot = n_c[:, t] + n_b[:, t]
        s = np.divide(n_c[:, t], tot, out=np.zeros(len(tot)), where=tot > 0)
        k = (x_c[:, t] + x_b[:, t]).astype(np.float64)
        inc = strata_increment(k, s)
        g += inc[:, idx]
        g0 += inc[:, i0]
        xc_cum += x_c[:, t]
        terms = xc_cum[:, None] * log_r[None, :] - (g - g0[:, None])
        top = terms.max(axis=1)
        log_e = top + np.log(np.exp(terms - top[:, None]).mean(axis=1))
        best = np.maximum(best, log_e)
    return best


def tolerance(n: int = SEEDS) -> int:
    """The most false rejections 500 seeds may show at level alpha (a 1-in-10^4 binomial tail)."""
    return int(binom.ppf(1 - 1e-4, n, ALPHA))


@st.composite
def schedules(draw: st.DrawFn) -> tuple[F64, F64, F64]:
    """A share schedule (1-4 steps, any shares, changing at any batch), a common error rate
    path (a baseline plus storms on both arms at any time) and a request rate path."""
    n_steps = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(1, BATCHES - 1), min_size=n_steps - 1,
                                max_size=n_steps - 1, unique=True)))  # fmt: skip
    levels = draw(st.lists(st.floats(0.01, 0.9), min_size=n_steps, max_size=n_steps))
    shares = np.empty(BATCHES)
    for lo, hi, w in zip([0, *cuts], [*cuts, BATCHES], levels, strict=True):
        shares[lo:hi] = w
    base = draw(st.floats(0.001, 0.03))
    rates = np.full(BATCHES, base)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, BATCHES - 1))
        rates[at : at + draw(st.integers(1, 12))] = min(0.5, base * draw(st.floats(2.0, 40.0)))
    rising = draw(st.booleans())
    requests = np.linspace(200, 2000, BATCHES) if rising else np.full(BATCHES, 1000.0)
    return shares, rates, requests


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=schedules(), seed=st.integers(0, 2**31 - 1))
def test_the_bound_holds_at_the_worst_stopping_time_for_any_schedule(
    family: tuple[F64, F64, F64], seed: int
) -> None:
    shares, rates, requests = family
    best = sup_log_e(*simulate(shares, rates, requests, seed))
    rejected = int((best >= math.log(1 / ALPHA)).sum())
    assert rejected <= tolerance(), (rejected, shares[::10], rates[::10])


def _storm_late() -> tuple[F64, F64, F64]:
    """The default schedule 5 % -> 25 % -> 50 % with a storm on both arms in the last step."""
    shares = np.repeat([0.05, 0.25, 0.5], BATCHES // 3)
    rates = np.full(BATCHES, 0.005)
    rates[90:100] = 0.10
    return shares, rates, np.full(BATCHES, 1000.0)


def test_a_storm_in_a_later_step_fools_the_pooled_test_not_the_stratified_one() -> None:
    n_c, n_b, x_c, x_b = simulate(*_storm_late(), seed=7)
    stratified = int((sup_log_e(n_c, n_b, x_c, x_b) >= math.log(1 / ALPHA)).sum())
    pooled = 0
    for i in range(SEEDS):
        cum = [np.cumsum(a[i]) for a in (x_c, n_c, x_b, n_b)]
        pooled += any(
            rate_test(*(int(a[t]) for a in cum), alpha=ALPHA).reject for t in range(BATCHES)
        )
    print(f"late storm, identical arms: stratified {stratified / SEEDS:.1%} rolled back, "
          f"pooled {pooled / SEEDS:.1%} ({SEEDS} seeds)")  # fmt: skip
    assert stratified <= tolerance()
    assert pooled > SEEDS // 2  # Simpson's paradox: the pooled share is no longer the null


def test_the_vectorised_process_is_the_rules_own() -> None:
    """The e-process above is what SequentialRule computes from Evidence, seed by seed."""
    n_c, n_b, x_c, x_b = simulate(*_storm_late(), seed=3)
    best = sup_log_e(n_c[:5], n_b[:5], x_c[:5], x_b[:5])
    for i in range(5):
        ev, top = Evidence(keep_history=False), -math.inf
        for t in range(BATCHES):
            c = ArmCounts(int(n_c[i, t]), int(x_c[i, t]))
            b = ArmCounts(int(n_b[i, t]), int(x_b[i, t]))
            ev = ev.add(Batch(10.0 * (t + 1), c, b))
            x = float(ev.canary_bad[ERRORS])
            top = max(top, stratified_test(x, ev.strata[ERRORS], 1.0).log_e)
        assert math.isclose(top, best[i], rel_tol=1e-9, abs_tol=1e-9)
        SequentialRule().verdict(ev, SLO(drift_alpha=None))  # the rule reads the same evidence
