"""Always-valid tests and confidence sequences for Bernoulli rates, canary vs champion.

Every canary SLO here is a rate of "bad events" (errors, slow requests, wrong predictions).
Two-sample tests condition on the bad events: when both arms have the same per-request rate,
each bad event lands in the canary with probability s = n_c / (n_c + n_b), the canary's share
of the requests (or labeled rows), whatever the common rate is and however it drifts in time.
A canary rate ψ times the champion's moves that probability to odds(s, ψ) (odds multiplied by
ψ). So "canary worse than champion" is a one-sample Bernoulli test on the sequence of bad
events, H0: π ≤ π0 = odds(s, ψ0) (Lindon et al. 2022, "Rapid regression detection in
software deployments through sequential testing", conditional on the counts).

The test statistic is a mixture of likelihood ratios (Robbins' mixture SPRT; Johari, Pekelis
& Walsh 2017, "Always valid inference"): M = (1/J) Σ_j Π_events (π_j/π0)^b (1-π_j/1-π0)^(1-b),
alternatives π_j = odds(π0, r_j) for the odds ratios r_j in ``ratios``. Why alpha holds: under
π = π0 each term is a likelihood ratio, a non-negative martingale with mean 1; under π < π0
(canary better) each factor has mean π·π_j/π0 + (1-π)(1-π_j)/(1-π0) ≤ 1 as π_j > π0, so M is
a non-negative supermartingale with M_0 = 1, and Ville's inequality gives
P(sup_t M_t ≥ 1/alpha) ≤ alpha: checking after every batch, at any (data-dependent) stopping time,
costs nothing. The mirror test (π_j = odds(π0, 1/r_j)) rejects H0: π ≥ π0 and is what
non-inferiority needs. Inverting either test over the margin gives an always-valid one-sided
bound; ``rate_difference_cs`` returns both, each valid at level alpha.

Tuning: ``ratios`` is the set of effects the mixture bets on, uniform weights. J points cost
at most ln(J) nats of evidence against the best single one; a point near the true effect
earns KL(π_true || π0) nats per bad event. The default (1.25, 1.6, 2, 3, 5) covers the
regressions that matter (a canary 25% to 5x worse), so a 0.5% -> 2% error rate (ψ = 4) at a
10% canary share is rejected after about 30 bad events. Any choice keeps alpha; it only
moves power.

Exactness: with m = 0 (ψ0 = 1) the test is exact given the routing is random with a constant
share (the empirical share is plugged in; counts of requests are large, so it is sharp).
A non-zero absolute margin m is turned into ψ0 = (p̂_b + m)/p̂_b with the champion's estimate
p̂_b, a plug-in that is accurate because the champion carries most of the traffic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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
        return self.log_e >= self.log_bound


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
    """Two-sample test on p_c - p_b (canary ``x_c`` bad of ``n_c``, champion ``x_b`` of ``n_b``).

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
