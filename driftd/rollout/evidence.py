"""Evidence a canary analysis sees (cumulative per-arm counts), the SLO it is judged by, and
the verdict it returns. Everything is a frozen dataclass: decisions are pure functions of these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class ArmCounts:
    """One arm's counts (canary or champion), per batch or cumulative since the canary started.

    Latency enters as exceedance counts so that every SLO is a Bernoulli rate with an exact
    always-valid test. ``slow`` counts requests slower than the arm's *relative* threshold:
    the gatherer fixes τ before the canary starts (the champion's p99 over its recent history)
    and counts champion requests slower than τ and canary requests slower than (1 + x)·τ, x the
    SLO's ``latency_margin``; "canary no worse than champion by more than x%" then reads "the
    canary's slow rate is no higher than the champion's". ``over_ceiling`` counts requests
    slower than the absolute ceiling (``SLO.latency_ceiling_ms``). ``correct`` counts labeled
    rows predicted right (regression: absolute error within the tolerance the gatherer uses);
    ``sq_error`` is the regression squared-error sum, reported, not tested.
    """

    requests: int = 0
    errors: int = 0
    slow: int = 0
    over_ceiling: int = 0
    labeled: int = 0
    correct: int = 0
    sq_error: float = 0.0

    def __add__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(
            self.requests + other.requests,
            self.errors + other.errors,
            self.slow + other.slow,
            self.over_ceiling + other.over_ceiling,
            self.labeled + other.labeled,
            self.correct + other.correct,
            self.sq_error + other.sq_error,
        )

    def __sub__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(
            self.requests - other.requests,
            self.errors - other.errors,
            self.slow - other.slow,
            self.over_ceiling - other.over_ceiling,
            self.labeled - other.labeled,
            self.correct - other.correct,
            self.sq_error - other.sq_error,
        )

    @property
    def wrong(self) -> int:
        """Labeled rows predicted wrong: the 'bad event' the quality test counts."""
        return self.labeled - self.correct


@dataclass(frozen=True)
class Batch:
    """What the loop gathered since the previous batch; ``elapsed_s`` is the batch's end time
    (seconds since the canary started); ``drift_*`` is the latest canary-vs-champion input
    drift test (max over features of a two-sample statistic, its multiplicity-adjusted
    p-value), None when not measured."""

    elapsed_s: float
    canary: ArmCounts
    champion: ArmCounts
    drift_statistic: float | None = None
    drift_pvalue: float | None = None
    step: int = 0


@dataclass(frozen=True)
class CumulativeCounts:
    """Cumulative counts at the end of one batch: the history interval rules difference."""

    elapsed_s: float
    canary: ArmCounts
    champion: ArmCounts


@dataclass(frozen=True)
class Evidence:
    """Cumulative evidence since the canary started, plus the per-batch snapshot history
    (so that interval-based rules are pure functions of the evidence too)."""

    canary: ArmCounts = ArmCounts()
    champion: ArmCounts = ArmCounts()
    elapsed_s: float = 0.0
    step: int = 0
    drift_statistic: float | None = None
    drift_pvalue: float | None = None
    canary_last_seen_s: float = 0.0
    champion_last_seen_s: float = 0.0
    history: tuple[CumulativeCounts, ...] = ()

    def add(self, batch: Batch) -> Evidence:
        """The evidence after ``batch``; ``self`` is unchanged."""
        if batch.elapsed_s < self.elapsed_s:
            raise ValueError(f"batch ends at {batch.elapsed_s} s, before {self.elapsed_s} s")
        can, cham = self.canary + batch.canary, self.champion + batch.champion
        return replace(
            self,
            canary=can,
            champion=cham,
            elapsed_s=batch.elapsed_s,
            step=batch.step,
            drift_statistic=(
                batch.drift_statistic if batch.drift_pvalue is not None else self.drift_statistic
            ),
            drift_pvalue=(
                batch.drift_pvalue if batch.drift_pvalue is not None else self.drift_pvalue
            ),
            canary_last_seen_s=(
                batch.elapsed_s if batch.canary.requests > 0 else self.canary_last_seen_s
            ),
            champion_last_seen_s=(
                batch.elapsed_s if batch.champion.requests > 0 else self.champion_last_seen_s
            ),
            history=(*self.history, CumulativeCounts(batch.elapsed_s, can, cham)),
        )

    def at(self, t: float) -> CumulativeCounts:
        """Cumulative counts at the last batch ending at or before ``t`` (zeros before any)."""
        lo, hi = 0, len(self.history)
        while lo < hi:  # first snapshot later than t
            mid = (lo + hi) // 2
            if self.history[mid].elapsed_s <= t:
                lo = mid + 1
            else:
                hi = mid
        return self.history[lo - 1] if lo else CumulativeCounts(0.0, ArmCounts(), ArmCounts())


@dataclass(frozen=True)
class SLO:
    """What a canary must satisfy. A margin or ceiling set to None disables that SLO.

    Rollback margins bound how much worse the canary may be before it is rolled back (0: any
    demonstrated degradation); non-inferiority (``*_ni``) margins are what must be *shown* for
    promotion. ``alpha`` bounds the false-rollback probability over the whole analysis (split
    across the enabled rollback tests) and, separately, the false-promotion probability.
    """

    alpha: float = 0.05
    error_margin: float | None = 0.0  # rollback when p_c - p_b > this is shown
    error_ni: float = 0.005  # promote only when p_c - p_b < this is shown
    error_ceiling: float | None = None  # rollback when p_c > this is shown
    latency_margin: float | None = 0.10  # x: the (1+x)·τ vs τ slow counts are compared
    latency_ceiling_ms: float | None = None  # e.g. 500 ms ...
    latency_quantile: float = 0.99  # ... for the p99: rollback when P(L > ceiling) > 1% shown
    quality_margin: float | None = 0.0  # accuracy points the canary may lose before rollback
    quality_ni: float = 0.02  # promote only when the loss < this is shown
    drift_alpha: float | None = 0.001  # inputs differ (p < this): comparison invalid, HALT
    min_samples: int = 1_000  # requests per arm before promotion
    min_labeled: int = 200  # labeled rows per arm before promotion (quality SLO on)
    max_duration_s: float = 1_800.0  # no conclusion by then: HALT
    stall_s: float = 120.0  # an arm without requests this long: HALT

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 < self.latency_quantile < 1.0:
            raise ValueError(f"latency_quantile must be in (0, 1), got {self.latency_quantile}")


class RolloutDecision(StrEnum):
    """What the loop should do next."""

    CONTINUE = "continue"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    HALT = "halt"


@dataclass(frozen=True)
class Reason:
    """One check behind a verdict: which SLO, its statistic against its bound, what fired."""

    slo: str
    check: str  # "rollback", "promote", "halt", "interval", ...
    statistic: float
    bound: float
    fired: bool
    rule: str
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """A rule's decision on some evidence, with every check that went into it."""

    decision: RolloutDecision
    rule: str
    elapsed_s: float
    reasons: tuple[Reason, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for events and the API)."""
        return {
            "decision": self.decision.value,
            "rule": self.rule,
            "elapsed_s": self.elapsed_s,
            "reasons": [asdict(r) for r in self.reasons],
        }
