"""Can this canary reach a decision in time? An expected-time plan from the observed traffic.

At the start of a rollout the controller knows the request rate and the champion's rates of
bad events (errors, wrong predictions, slow requests at each latency threshold). For a canary
as good as the champion, each non-inferiority test gains on average KL nats per bad event
(the expected log-likelihood ratio of its alternative against its null at the step's share);
it promotes once every test has gained ln(1/alpha) (plus ln J for a J-point mixture). The
plan walks the steps (each lasts its dwell time, or until the canary served the step's least
requests), adds the expected evidence per second, and says when the last test would pass. It
is an expectation, not a guarantee: the stopping time of a sequential test spreads around it,
so a plan is "reachable" only with room to spare (``SLACK``). When it is not, it says what
would make it reachable: a longer ``max_duration_s``, or wider non-inferiority margins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from driftd.rollout.evidence import SLO, json_safe
from driftd.rollout.sequential import GRID, NI_STEPS, grid_index, odds_shift

SLACK = 2.0  # reachable when the expected time times this fits in max_duration_s
HORIZON_S = 6 * 3600.0  # the plan looks this far ahead at most


@dataclass(frozen=True)
class Rates:
    """The champion's traffic before the canary: requests per second, and per request the
    rate of each kind of bad event the non-inferiority tests count, with the rate ratio an
    identical canary has (below 1 for latency: its threshold is (1 + x) times higher)."""

    requests_per_s: float
    bad: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # slo -> (p, ψ_same)
    per_request: Mapping[str, float] = field(default_factory=dict)  # slo -> rows per request


@dataclass(frozen=True)
class Plan:
    """When each non-inferiority test is expected to pass, and what that means."""

    requests_per_s: float
    expected_s: dict[str, float]  # slo -> expected seconds to show non-inferiority (inf: never)
    expected_total_s: float
    step_s: tuple[float, ...]  # expected seconds at each step but the last
    max_duration_s: float
    reachable: bool
    advice: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (logs, the API); infinities as None."""
        d = asdict(self)
        d["expected_s"] = {k: _finite(v) for k, v in self.expected_s.items()}
        d["expected_total_s"] = _finite(self.expected_total_s)
        out: dict[str, Any] = json_safe(d)
        return out

    def summary(self) -> str:
        """One line for the log and the timeline."""
        t = self.expected_total_s
        when = f"~{t:.0f} s" if math.isfinite(t) else "never"
        head = (
            f"at {self.requests_per_s:.3g} req/s a good canary is expected to promote in {when} "
            f"(max_duration_s {self.max_duration_s:.0f})"
        )
        return head if self.reachable else f"{head}: not reachable; " + "; ".join(self.advice)


def _finite(x: float) -> float | None:
    return round(x, 1) if math.isfinite(x) else None


def _kl_per_event(share: float, truth: float, null: float, alt: Sequence[float]) -> float:
    """Expected log e-value gained per bad event (mixture: its best point, less ln J)."""
    pi = odds_shift(share, truth)
    p0 = odds_shift(share, null)
    best = -math.inf
    for a in alt:
        p1 = odds_shift(share, a)
        best = max(best, pi * math.log(p1 / p0) + (1 - pi) * math.log((1 - p1) / (1 - p0)))
    return best


def _alternatives(null: float) -> tuple[float, ...]:
    """The non-inferiority alternatives ``stratified_test`` uses for this null."""
    i0 = grid_index(null, "less")
    if GRID[i0] >= 1.2:
        return (1.0,)
    return tuple(float(GRID[i0 + j]) for j in NI_STEPS if 0 <= i0 + j < len(GRID))


def make_plan(
    rates: Rates,
    steps: Sequence[float],
    step_min_s: float,
    slo: SLO,
    nulls: Mapping[str, float],
) -> Plan:
    """The expected time for each non-inferiority test (``nulls``: slo -> its null ratio ψ0)
    to pass for a canary as good as the champion, over the rollout's steps."""
    lam = max(rates.requests_per_s, 0.0)
    step_s = tuple(
        max(step_min_s, slo.step_min_requests / (lam * w)) if lam > 0 else math.inf
        for w in steps[:-1]
    )
    expected: dict[str, float] = {}
    for name, null in nulls.items():
        p, same = rates.bad.get(name, (0.0, 1.0))
        rows = rates.per_request.get(name, 1.0)
        alt = _alternatives(null)
        need = math.log(1.0 / slo.alpha) + math.log(len(alt))
        expected[name] = _time_to(need, lam * rows * p, same, null, alt, steps, step_s)
    n_min = slo.min_samples / (lam * steps[-1]) if lam > 0 else math.inf
    floor = max(sum(step_s) + max(step_min_s, n_min), slo.min_duration_s)
    total = max([floor, *expected.values()])
    reachable = total * SLACK <= slo.max_duration_s
    advice: list[str] = []
    if not reachable:
        if math.isfinite(total):
            advice.append(f"raise max_duration_s to >= {math.ceil(total * SLACK)}")
        slow = [k for k, v in expected.items() if v * SLACK > slo.max_duration_s]
        if slow:
            keys = dict.fromkeys(_setting(k) for k in slow)
            advice.append(f"or widen {', '.join(keys)} (slowest: {', '.join(slow)})")
        if lam > 0 and step_s and step_s[0] * SLACK > slo.max_duration_s / (len(steps) + 1):
            advice.append(f"or start at a larger share than {steps[0]:.0%}")
    return Plan(lam, expected, total, step_s, slo.max_duration_s, reachable, tuple(advice))


def _time_to(
    need: float,
    events_per_s: float,
    same: float,
    null: float,
    alt: Sequence[float],
    steps: Sequence[float],
    step_s: Sequence[float],
) -> float:
    """Seconds until the expected log e-value reaches ``need``."""
    if events_per_s <= 0:
        return math.inf
    got, t = 0.0, 0.0
    for w, dur in zip(steps, [*step_s, HORIZON_S], strict=True):
        # bad events per second at this share: canary's (ψ_same·p) plus the champion's (p)
        per_s = events_per_s * (w * same + (1 - w))
        gain = _kl_per_event(w, same, null, alt) * per_s
        if gain > 0 and got + gain * dur >= need:
            return t + (need - got) / gain
        got += max(gain, 0.0) * dur
        t += dur
    return math.inf


def nulls_of(slo: SLO, rates: Rates) -> dict[str, float]:
    """Each non-inferiority test's null rate ratio (an absolute margin is read as the ratio
    it means at the champion's rate)."""
    out: dict[str, float] = {}

    def ratio(name: str, margin: float) -> float:
        if slo.margins == "relative":
            return 1.0 + margin
        p = rates.bad.get(name, (0.0, 1.0))[0]
        return (p + margin) / p if p > 0 else math.inf

    if slo.error_margin is not None:
        out["error_rate"] = ratio("error_rate", slo.error_ni)
    if slo.latency_margin is not None:
        for q in slo.latency_quantiles:
            if q <= slo.latency_ni_quantile:
                out[f"latency_q{q:g}"] = 1.0
    if slo.quality_margin is not None:
        out["quality"] = ratio("quality", slo.quality_ni)
    return out


def _setting(test: str) -> str:
    """The setting that widens a non-inferiority test's margin."""
    if test == "error_rate":
        return "error_ni"
    if test == "quality":
        return "quality_ni"
    return "latency_margin (or a lower latency_ni_quantile)"
