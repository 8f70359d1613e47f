"""Always-valid tests and confidence sequences for Bernoulli rates, canary vs champion.

Every canary SLO here is a rate of "bad events" (errors, slow requests, wrong predictions).
Two-sample tests condition on the bad events (Lindon et al. 2022, "Rapid regression detection
in software deployments through sequential testing"). Within one batch t of the analysis, with
n_c and n_b requests (or labeled rows) on the two arms and k_t bad events in all: when both arms
have the same per-request rate *in that batch*, the canary's bad events are a uniformly random
subset of the batch's requests' outcomes (routing is exchangeable within a batch), so given the
counts x_c,t is hypergeometric with mean k_t·s_t, s_t = n_c/(n_c + n_b) the batch's share.
A canary ψ times worse (odds) moves each bad event's chance of being the canary's to
odds(s_t, ψ). Hence the **stratified** test used by the rules: per batch, the likelihood ratio
of Binomial(k_t, odds(s_t, ψ1)) against Binomial(k_t, odds(s_t, ψ0)), multiplied over batches.

Why alpha holds, for any share schedule and any path of the common rate: the rate and the share
may change from batch to batch arbitrarily; within a batch only the routing must be
exchangeable. Each batch's factor r^x / (1 + π0(r-1))^k is convex in x, and a hypergeometric
count is dominated in convex order by the binomial with the same mean (Hoeffding 1963, Thm. 4),
so its conditional mean given the past is ≤ 1 under H0: ψ ≤ ψ0 (for ψ < ψ0 each factor's mean
is smaller still). The product is a non-negative supermartingale with M_0 = 1, a mixture of
them (uniform over the alternatives ``ratios``, and over latency thresholds) is one too, and
Ville's inequality gives P(sup_t M_t ≥ 1/alpha) ≤ alpha: checking after every batch, at any
data-dependent stopping time, costs nothing. Pooling the batches instead (plugging in the
cumulative share) is *not* valid when the share changes: an error storm on both arms during a
later, larger step puts more bad events on the canary than the cumulative share predicts
(Simpson's paradox), and identical canaries were rolled back every time (``rate_test`` below
keeps that pooled form for a constant share only).

Sufficient statistics: with π0,t = odds(s_t, ψ0) and π1 = odds(π0, r), a batch's log ratio is
x_c,t·ln r - k_t·ln(1 + π0,t(r - 1)) = x_c,t·ln r - [G_t(ψ0·r) - G_t(ψ0)], where
G_t(c) = k_t·ln(1 - s_t + s_t·c). The evidence keeps g(c) = Σ_t G_t(c) on a fixed grid of
c = 2^(i/16) (1/256 .. 256): one vector per bad-event kind, updated once per batch, from which
every test at every margin is read. Margins are applied at grid points, rounded to the side
that keeps alpha (a rollback null ψ0 upwards, a non-inferiority null downwards: at most 4.4 %).

Tuning: ``ratios`` is the set of effects the rollback mixture bets on, uniform weights. J points
cost at most ln(J) nats of evidence against the best single one; a point near the true effect
earns KL(π_true || π0) nats per bad event. The default (≈1.25, 1.6, 2, 3, 5, on the grid)
covers the regressions that matter. The non-inferiority test bets on the canary being as good
as the champion (ψ = 1) when the margin leaves room for it, which earns the most per event for
a good canary; any choice keeps alpha, it only moves power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

DEFAULT_RATIOS: tuple[float, ...] = (1.25, 1.6, 2.0, 3.0, 5.0)
Side = Literal["greater", "less"]


@dataclass(frozen=True)
class SeqTest:
    """One always-valid test: reject H0 when ``log_e`` (log of the mixture martingale) reaches
    ``log_bound`` = ln(1/alpha). ``null`` is π0 on the event scale; ``estimate`` the plain estimate
    of the compared quantity (difference of rates, or the canary's rate)."""

    log_e: float
    log_bound: float
    null: float
    estimate: float

    @property
    def reject(self) -> bool:
        # a Python bool: numpy's would not serialise into the rollout's JSON evidence
        return bool(self.log_e >= self.log_bound)


def odds_shift(p: float, ratio: float) -> float:
    """The probability whose odds are ``ratio`` times the odds of ``p``."""
    return p * ratio / (p * ratio + 1.0 - p)


def log_mixture_lr(
    x: int, k: int, pi0: float, ratios: Sequence[float] = DEFAULT_RATIOS, side: Side = "greater"
) -> float:
    """ln M for ``x`` successes in ``k`` Bernoulli trials against H0 π ≤ π0 ("greater") or
    π ≥ π0 ("less"); alternatives at odds ratios ``r`` (or 1/r) from π0, equal weights."""
    if k <= 0 or not 0.0 < pi0 < 1.0:
        return 0.0
    terms = []
    for r in ratios:
        p1 = odds_shift(pi0, r if side == "greater" else 1.0 / r)
        terms.append(x * math.log(p1 / pi0) + (k - x) * math.log((1.0 - p1) / (1.0 - pi0)))
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


def _champion_rate(x_b: int, n_b: int) -> float:
    return (x_b + 0.5) / (n_b + 1.0)


def rate_test(
    x_c: int,
    n_c: int,
    x_b: int,
    n_b: int,
    *,
    margin: float = 0.0,
    alpha: float = 0.05,
    side: Side = "greater",
    ratios: Sequence[float] = DEFAULT_RATIOS,
) -> SeqTest:
    """Pooled two-sample test on p_c - p_b (canary ``x_c`` bad of ``n_c``, champion ``x_b`` of
    ``n_b``): valid only while the canary's share of requests stays constant (one stratum; the
    rules use ``stratified_test``). A non-zero absolute ``margin`` becomes ψ0 = (p̂_b + m)/p̂_b
    with the champion's estimate p̂_b, a plug-in.

    "greater": H0 p_c - p_b ≤ margin; rejecting it shows the canary worse by more than the
    margin (rollback). "less": H0 p_c - p_b ≥ margin; rejecting it shows non-inferiority."""
    bound = math.log(1.0 / alpha)
    if n_c <= 0 or n_b <= 0:
        return SeqTest(0.0, bound, math.nan, math.nan)
    estimate = x_c / n_c - x_b / n_b
    share = n_c / (n_c + n_b)
    if margin == 0.0:
        psi0 = 1.0
    else:
        pb = _champion_rate(x_b, n_b)
        psi0 = max(pb + margin, 1e-12) / pb
    pi0 = odds_shift(share, psi0)
    return SeqTest(log_mixture_lr(x_c, x_c + x_b, pi0, ratios, side), bound, pi0, estimate)


def rate_ceiling_test(
    x: int,
    n: int,
    ceiling: float,
    *,
    alpha: float = 0.05,
    side: Side = "greater",
    ratios: Sequence[float] = DEFAULT_RATIOS,
) -> SeqTest:
    """One-sample test of the canary's rate against an absolute ceiling: "greater" rejects
    H0 p ≤ ceiling (rollback), "less" rejects H0 p ≥ ceiling (the SLO is met)."""
    bound = math.log(1.0 / alpha)
    estimate = x / n if n > 0 else math.nan
    return SeqTest(log_mixture_lr(x, n, ceiling, ratios, side), bound, ceiling, estimate)


def rate_difference_cs(
    x_c: int,
    n_c: int,
    x_b: int,
    n_b: int,
    alpha: float = 0.05,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    tol: float = 1e-7,
) -> tuple[float, float]:
    """Always-valid (lower, upper) bounds on p_c - p_b; each one-sided bound holds at level alpha
    simultaneously over time. lower > m is exactly ``rate_test(margin=m).reject``."""
    if n_c <= 0 or n_b <= 0:
        return (-1.0, 1.0)
    pb = _champion_rate(x_b, n_b)
    lo_end, hi_end = -pb + 1e-9, 1.0 - pb

    def rejects(m: float, side: Side) -> bool:
        return rate_test(x_c, n_c, x_b, n_b, margin=m, alpha=alpha, side=side, ratios=ratios).reject

    def bisect(a: float, b: float, side: Side) -> float:
        # side "greater": rejection holds for m below the bound; "less": above it.
        while b - a > tol:
            mid = 0.5 * (a + b)
            if rejects(mid, side) == (side == "greater"):
                a = mid
            else:
                b = mid
        return a if side == "greater" else b

    lower = bisect(lo_end, hi_end, "greater") if rejects(lo_end, "greater") else -1.0
    upper = bisect(lo_end, hi_end, "less") if rejects(hi_end, "less") else 1.0
    return (lower, upper)


# -- the stratified test (what the rules use) ---------------------------------------------------
F64 = npt.NDArray[np.float64]
GRID_PER_OCTAVE = 16
GRID_HALF = 8 * GRID_PER_OCTAVE  # c from 2^-8 to 2^8
GRID: F64 = 2.0 ** (np.arange(-GRID_HALF, GRID_HALF + 1) / GRID_PER_OCTAVE)
_LOG_GRID: F64 = np.log(GRID)
# Rollback alternatives as grid offsets: odds ratios ≈ 1.24, 1.61, 2, 2.95, 4.97.
ROLLBACK_STEPS: tuple[int, ...] = (5, 11, 16, 25, 37)
# Non-inferiority alternatives below a null of ψ0 ≈ 1 (latency): ≈ 1/1.24, 1/1.61, 1/2.
NI_STEPS: tuple[int, ...] = (-5, -11, -16)


def strata_increment(k: F64, s: F64) -> F64:
    """One batch's G(c) on the grid, per bad-event kind: ``k`` bad events in all at canary
    share ``s`` (arrays of equal length) -> shape (len(k), len(GRID))."""
    s = np.clip(s, 0.0, 1.0)
    return k[:, None] * np.log1p(s[:, None] * (GRID[None, :] - 1.0))


def grid_index(ratio: float, side: Side) -> int:
    """The grid point for a null odds ratio, rounded so that alpha holds: up for a rollback
    null ("greater": H0 ψ ≤ ψ0 grows), down for a non-inferiority null ("less")."""
    x = math.log2(max(ratio, 1e-300)) * GRID_PER_OCTAVE
    i = math.ceil(x - 1e-9) if side == "greater" else math.floor(x + 1e-9)
    return min(max(i, -GRID_HALF), GRID_HALF) + GRID_HALF


def stratified_test(
    x_c: float,
    g: F64,
    null_ratio: float = 1.0,
    *,
    alpha: float = 0.05,
    side: Side = "greater",
    steps: Sequence[int] | None = None,
    estimate: float = math.nan,
) -> SeqTest:
    """The stratified test on one kind of bad event: ``x_c`` the canary's bad events over all
    batches, ``g`` their strata vector. "greater" rejects H0 ψ ≤ ``null_ratio`` (the canary is
    worse: rollback); "less" rejects H0 ψ ≥ ``null_ratio`` (non-inferiority shown). ``steps``:
    the alternatives as grid offsets from the null (default: ``ROLLBACK_STEPS``, or for "less"
    the point ψ = 1 when the null is above 1.2, else ``NI_STEPS``)."""
    bound = math.log(1.0 / alpha)
    i0 = grid_index(null_ratio, side)
    if steps is None:
        if side == "greater":
            steps = ROLLBACK_STEPS
        else:
            one = GRID_HALF - i0
            steps = (one,) if GRID[i0] >= 1.2 else NI_STEPS
    js = [i0 + j for j in steps if 0 <= i0 + j < len(GRID) and j != 0]
    if not js or not g.any():
        return SeqTest(0.0, bound, float(GRID[i0]), estimate)
    idx = np.array(js)
    terms = x_c * (_LOG_GRID[idx] - _LOG_GRID[i0]) - (g[idx] - g[i0])
    return SeqTest(_log_mean_exp(terms), bound, float(GRID[i0]), estimate)


def combined(tests: Sequence[SeqTest], estimate: float = math.nan) -> SeqTest:
    """The average of several tests' e-processes (each a test supermartingale under a null
    that holds for all of them at once): one test, valid at the first one's bound."""
    if not tests:
        return SeqTest(0.0, math.log(20.0), math.nan, estimate)
    logs = np.array([t.log_e for t in tests])
    return SeqTest(_log_mean_exp(logs), tests[0].log_bound, tests[0].null, estimate)


def ratio_bounds(x_c: float, g: F64, alpha: float = 0.05) -> tuple[float, float]:
    """Always-valid (lower, upper) bounds on the rate ratio ψ canary/champion, read on the
    grid: the largest ψ0 the rollback test rejects, the smallest the non-inferiority test
    (mixture ``NI_STEPS``) rejects; 0 and inf when none. Each holds at level alpha."""
    if not g.any():
        return 0.0, math.inf
    bound = math.log(1.0 / alpha)
    i0 = np.arange(len(GRID))

    def log_e(steps: Sequence[int]) -> F64:
        j = i0[:, None] + np.array(steps)[None, :]
        ok = (j >= 0) & (j < len(GRID))
        jj = np.clip(j, 0, len(GRID) - 1)
        terms = x_c * (_LOG_GRID[jj] - _LOG_GRID[i0, None]) - (g[jj] - g[i0, None])
        terms = np.where(ok, terms, -np.inf)
        top = np.where(ok.any(axis=1), terms.max(axis=1), 0.0)
        mean = np.where(ok, np.exp(terms - top[:, None]), 0.0).sum(axis=1) / len(steps)
        with np.errstate(divide="ignore"):
            return np.asarray(top + np.log(mean), np.float64)

    low = np.flatnonzero(log_e(ROLLBACK_STEPS) >= bound)
    high = np.flatnonzero(log_e(NI_STEPS) >= bound)
    lower = float(GRID[low.max()]) if len(low) else 0.0
    upper = float(GRID[high.min()]) if len(high) else math.inf
    return lower, upper


def _log_mean_exp(terms: F64) -> float:
    top = float(np.max(terms))
    return top + math.log(float(np.mean(np.exp(terms - top))))
