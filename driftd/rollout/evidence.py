"""Evidence a canary analysis sees (cumulative per-arm counts and the per-batch strata of the
conditional tests), the SLO it is judged by, and the verdict it returns. Everything is a frozen
dataclass: decisions are pure functions of these.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

import numpy as np

from driftd.rollout.sequential import F64, GRID, strata_increment

# Rows of ``Evidence.strata``: one per kind of bad event; latency thresholds follow.
ERRORS, WRONG, SLOW0 = 0, 1, 2


@dataclass(frozen=True)
class ArmCounts:
    """One arm's counts (canary or champion), per batch or cumulative since the canary started.

    Latency enters as exceedance counts so that every SLO is a Bernoulli rate with an exact
    always-valid test, at several thresholds so that the whole histogram counts, tail
    included. ``slow[i]`` counts requests slower than the arm's *relative* threshold for
    ``SLO.latency_quantiles[i]``: the gatherer fixes τ_i before the canary starts (the
    champion's quantile over its recent history) and counts champion requests slower than τ_i
    and canary requests slower than (1 + x)·τ_i, x the SLO's ``latency_margin``; "canary no
    worse than champion by more than x%" then reads "the canary's slow rate is no higher than
    the champion's" at every threshold. ``over_ceiling`` counts requests
    slower than the absolute ceiling (``SLO.latency_ceiling_ms``). ``correct`` counts labeled
    rows predicted right (regression: absolute error within the tolerance the gatherer uses);
    ``sq_error`` is the regression squared-error sum, reported, not tested.
    """

    requests: int = 0
    errors: int = 0
    slow: tuple[int, ...] | int = ()  # an int is one threshold's count
    over_ceiling: int = 0
    labeled: int = 0
    correct: int = 0
    sq_error: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.slow, tuple):
            object.__setattr__(self, "slow", (int(self.slow),))

    @property
    def slows(self) -> tuple[int, ...]:
        """``slow`` as a tuple (typed)."""
        assert isinstance(self.slow, tuple)
        return self.slow

    def __add__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(
            self.requests + other.requests,
            self.errors + other.errors,
            _pairwise(self.slows, other.slows, 1),
            self.over_ceiling + other.over_ceiling,
            self.labeled + other.labeled,
            self.correct + other.correct,
            self.sq_error + other.sq_error,
        )

    def __sub__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(
            self.requests - other.requests,
            self.errors - other.errors,
            _pairwise(self.slows, other.slows, -1),
            self.over_ceiling - other.over_ceiling,
            self.labeled - other.labeled,
            self.correct - other.correct,
            self.sq_error - other.sq_error,
        )

    @property
    def wrong(self) -> int:
        """Labeled rows predicted wrong: the 'bad event' the quality test counts."""
        return self.labeled - self.correct


def _pairwise(a: tuple[int, ...], b: tuple[int, ...], sign: int) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return tuple(x + sign * y for x, y in zip(a, b, strict=True))


def _rows(a: F64, n: int) -> F64:
    """A copy of ``a`` with zero rows added up to ``n``."""
    out = np.zeros((n, a.shape[1]))
    out[: a.shape[0]] = a
    return out


def _share(n_c: float, n_b: float) -> float:
    return n_c / (n_c + n_b) if n_c + n_b > 0 else 0.0


def bad_events(arm: ArmCounts, n_slow: int) -> F64:
    """An arm's bad events per kind: errors, wrong predictions, slow at each threshold."""
    slow = _pairwise(arm.slows, (0,) * n_slow, 1)
    return np.array([arm.errors, arm.wrong, *slow], np.float64)


def batch_strata(canary: ArmCounts, champion: ArmCounts) -> F64:
    """One batch's contribution to the strata: per kind of bad event (errors, wrong
    predictions, slow at each threshold), G(c) on the grid at this batch's own share."""
    c, b = canary, champion
    s_req, s_lab = _share(c.requests, b.requests), _share(c.labeled, b.labeled)
    n = max(len(c.slows), len(b.slows))
    k = bad_events(c, n) + bad_events(b, n)
    share = np.array([s_req, s_lab, *([s_req] * n)], np.float64)
    return strata_increment(k, share)


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
    """Cumulative evidence since the canary started: per-arm counts, the strata of the
    conditional tests (``strata[kind]``: Σ over batches of G(c) on the grid, see
    ``driftd.rollout.sequential``), the current step's start and canary requests, and the
    per-batch snapshot history (so that interval-based rules are pure functions of the evidence
    too; ``keep_history=False`` skips it where no interval rule reads it)."""

    canary: ArmCounts = ArmCounts()
    champion: ArmCounts = ArmCounts()
    elapsed_s: float = 0.0
    step: int = 0
    drift_statistic: float | None = None
    drift_pvalue: float | None = None
    canary_last_seen_s: float = 0.0
    champion_last_seen_s: float = 0.0
    history: tuple[CumulativeCounts, ...] = ()
    strata: F64 = field(default_factory=lambda: np.zeros((SLOW0, len(GRID))), compare=False)
    canary_bad: F64 = field(default_factory=lambda: np.zeros(SLOW0), compare=False)
    step_started_s: float = 0.0
    step_requests: int = 0  # the canary's requests since the current step began
    keep_history: bool = True

    def add(self, batch: Batch) -> Evidence:
        """The evidence after ``batch``; ``self`` is unchanged."""
        if batch.elapsed_s < self.elapsed_s:
            raise ValueError(f"batch ends at {batch.elapsed_s} s, before {self.elapsed_s} s")
        can, cham = self.canary + batch.canary, self.champion + batch.champion
        new_step = batch.step != self.step
        strata, bad = self.strata, self.canary_bad
        if not new_step:
            # The batch in which the traffic changed mixes two shares (routing is not
            # exchangeable within it): it is left out of the tests, a rule fixed in advance.
            inc = batch_strata(batch.canary, batch.champion)
            n = max(inc.shape[0], strata.shape[0])
            strata = _rows(strata, n)
            strata[: inc.shape[0]] += inc
            bad = _rows(bad[:, None], n)[:, 0]
            bad += bad_events(batch.canary, n - SLOW0)
        return replace(
            self,
            canary=can,
            champion=cham,
            elapsed_s=batch.elapsed_s,
            step=batch.step,
            strata=strata,
            canary_bad=bad,
            step_started_s=self.elapsed_s if new_step else self.step_started_s,
            step_requests=batch.canary.requests + (0 if new_step else self.step_requests),
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
            history=(
                (*self.history, CumulativeCounts(batch.elapsed_s, can, cham))
                if self.keep_history
                else ()
            ),
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
    promotion. With ``margins = "relative"`` (the default) a margin is a fraction of the
    champion's rate — ``error_ni = 1.0``: the canary's error rate is shown below twice the
    champion's — so one setting means the same beside a 0.5 % and a 1.5 % baseline; with
    "absolute" it is a difference of rates (accuracy points for quality). ``alpha`` bounds the
    false-rollback probability over the whole analysis (split across the enabled rollback
    tests), for any schedule of traffic shares and any path of the common rates, and,
    separately, the false-promotion probability. Latency is compared at every quantile of
    ``latency_quantiles`` (rollback when any is shown worse; promotion needs non-inferiority at
    those up to ``latency_ni_quantile``: the far tail is too rare to *show* good in time).
    ``max_duration_s`` bounds the analysis: undecided by then, HALT; nothing is promoted after.
    ``min_duration_s`` is the least time a canary runs before it is promoted, however strong
    the evidence: failures that begin late (a leak, a cache, an hourly job) get time to show.
    """

    alpha: float = 0.05
    margins: Literal["relative", "absolute"] = "relative"
    error_margin: float | None = 0.0  # rollback when p_c > p_b·(1 + this) is shown
    error_ni: float = 1.0  # promote only when p_c < p_b·(1 + this) is shown
    error_ceiling: float | None = None  # rollback when p_c > this is shown
    latency_margin: float | None = 0.10  # x: the (1+x)·τ_q vs τ_q slow counts are compared
    latency_quantiles: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)
    latency_ni_quantile: float = 0.99
    latency_ceiling_ms: float | None = None  # e.g. 500 ms ...
    latency_quantile: float = 0.99  # ... for the p99: rollback when P(L > ceiling) > 1% shown
    quality_margin: float | None = 0.0  # the canary's wrong-prediction rate, as error_margin
    quality_ni: float = 0.25  # promote only when wrong_c < wrong_b·(1 + this) is shown
    drift_alpha: float | None = 0.001  # inputs differ (p < this): comparison invalid, HALT
    min_samples: int = 1_000  # requests per arm before promotion
    min_labeled: int = 200  # labeled rows per arm before promotion (quality SLO on)
    step_min_requests: int = 100  # canary requests at a step before the next step
    min_duration_s: float = 360.0  # no promotion before (failures that start late: leaks, ...)
    max_duration_s: float = 1_800.0  # no conclusion by then: HALT
    stall_s: float = 120.0  # an arm without requests this long: HALT

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 < self.latency_quantile < 1.0:
            raise ValueError(f"latency_quantile must be in (0, 1), got {self.latency_quantile}")
        if not 0.0 <= self.min_duration_s < self.max_duration_s:
            raise ValueError(
                f"min_duration_s must be in [0, max_duration_s = {self.max_duration_s}), "
                f"got {self.min_duration_s}"
            )
        qs = self.latency_quantiles
        if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(set(qs)):
            raise ValueError(f"latency_quantiles must increase within (0, 1), got {qs}")


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
    """A rule's decision on some evidence, with every check that went into it. ``ready``: no
    rollback or halt, and the current step has had its exposure (its least canary requests):
    the state machine may move a step that is not the last one on after its dwell time."""

    decision: RolloutDecision
    rule: str
    elapsed_s: float
    reasons: tuple[Reason, ...] = field(default=())
    ready: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for events, the API and the rollout row); an unbounded end of an
        interval (inf) or a missing estimate (nan) is None: strict JSON has neither."""
        out: dict[str, Any] = json_safe(
            {
                "decision": self.decision.value,
                "rule": self.rule,
                "elapsed_s": self.elapsed_s,
                "reasons": [asdict(r) for r in self.reasons],
                "ready": self.ready,
            }
        )
        return out


def json_safe(x: Any) -> Any:
    """``x`` with every non-finite float replaced by None, in dicts, lists and tuples too
    (PostgreSQL's json type refuses Infinity and NaN), and numpy scalars as Python ones (json
    refuses numpy's bool and ints)."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x
