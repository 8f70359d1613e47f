"""Decision rules: pure functions of the cumulative evidence and the SLO.

``SequentialRule`` is driftd's (always-valid tests, evaluated on every batch). ``FlaggerRule``
and ``ArgoRule`` reproduce how Flagger and Argo Rollouts decide, for comparison: fixed
per-interval thresholds on the canary alone, with their failure counters recomputed from the
evidence's snapshot history, so they are pure too (same evidence, same verdict).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from driftd.rollout.evidence import (
    ERRORS,
    SLO,
    SLOW0,
    WRONG,
    ArmCounts,
    Evidence,
    Reason,
    RolloutDecision,
    Verdict,
)
from driftd.rollout.sequential import (
    DEFAULT_RATIOS,
    SeqTest,
    Side,
    combined,
    rate_ceiling_test,
    ratio_bounds,
    stratified_test,
)


class Rule(Protocol):
    """A canary decision rule: same evidence and SLO in, same verdict out."""

    @property
    def name(self) -> str: ...

    def verdict(self, evidence: Evidence, slo: SLO) -> Verdict: ...


def _reason(slo: str, check: str, t: SeqTest, rule: str) -> Reason:
    return Reason(slo, check, t.log_e, t.log_bound, t.reject, rule, f"estimate={t.estimate:.6g}")


@dataclass(frozen=True)
class SequentialRule:
    """driftd's rule. ROLLBACK as soon as an enabled SLO's always-valid "canary worse" test
    rejects (each at alpha / #enabled, so any false rollback has probability ≤ alpha, however
    the traffic share and the common rates move: the tests are stratified by batch); HALT when
    an arm stalls, the inputs differ (drift) or ``max_duration_s`` passes undecided; PROMOTE
    when every enabled SLO has shown non-inferiority at alpha (intersection-union: false
    promotion ≤ alpha), each arm has its minimum samples and ``min_duration_s`` has passed;
    CONTINUE otherwise, ``ready``
    once the current step has its least canary requests. No data never passes."""

    ratios: Sequence[float] = DEFAULT_RATIOS  # the pooled form's alternatives (unused here)
    name: str = "driftd-sequential"

    def _tests(self, ev: Evidence, slo: SLO, s: Side, alpha: float) -> list[tuple[str, SeqTest]]:
        c, b = ev.canary, ev.champion
        greater = s == "greater"
        out: list[tuple[str, SeqTest]] = []
        if slo.error_margin is not None:
            m = slo.error_margin if greater else slo.error_ni
            psi = _null_ratio(slo, m, b.errors, b.requests)
            est = _rate(c.errors, c.requests) - _rate(b.errors, b.requests)
            out.append(("error_rate", _strat(ev, ERRORS, psi, alpha, s, est)))
        if slo.error_ceiling is not None:
            t = rate_ceiling_test(c.errors, c.requests, slo.error_ceiling, alpha=alpha, side=s)
            out.append(("error_ceiling", t))
        if slo.latency_margin is not None:
            qs = slo.latency_quantiles
            per = [
                (q, _strat(ev, SLOW0 + i, 1.0, alpha, s, _slow_diff(ev, i)))
                for i, q in enumerate(qs)
            ]
            if greater:  # one test: the average over thresholds (a tail regression counts)
                out.append(("latency_relative", combined([t for _, t in per])))
            else:  # shown at every threshold up to latency_ni_quantile
                out += [(f"latency_q{q:g}", t) for q, t in per if q <= slo.latency_ni_quantile]
        if slo.latency_ceiling_ms is not None:
            q = 1.0 - slo.latency_quantile
            t = rate_ceiling_test(c.over_ceiling, c.requests, q, alpha=alpha, side=s)
            out.append(("latency_ceiling", t))
        if slo.quality_margin is not None:
            m = slo.quality_margin if greater else slo.quality_ni
            psi = _null_ratio(slo, m, b.wrong, b.labeled)
            est = _rate(c.wrong, c.labeled) - _rate(b.wrong, b.labeled)
            out.append(("quality", _strat(ev, WRONG, psi, alpha, s, est)))
        return out

    def verdict(self, evidence: Evidence, slo: SLO) -> Verdict:
        """The decision on ``evidence``; see the class docstring for the order of checks."""
        ev, name = evidence, self.name

        def done(d: RolloutDecision, reasons: list[Reason], ready: bool = False) -> Verdict:
            if d is not RolloutDecision.CONTINUE:
                reasons = reasons + _intervals(ev, slo)
            return Verdict(d, name, ev.elapsed_s, tuple(reasons), ready)

        n_rollback = len(self._tests(ev, slo, "greater", slo.alpha))
        a_rb = slo.alpha / max(n_rollback, 1)
        rb = [_reason(k, "rollback", t, name) for k, t in self._tests(ev, slo, "greater", a_rb)]
        if any(r.fired for r in rb):
            return done(RolloutDecision.ROLLBACK, [r for r in rb if r.fired])
        stalled = [
            Reason(arm, "halt", ev.elapsed_s - seen, slo.stall_s, True, name, "no data")
            for arm, seen in (
                ("canary", ev.canary_last_seen_s),
                ("champion", ev.champion_last_seen_s),
            )
            if ev.elapsed_s - seen > slo.stall_s
        ]
        if stalled:
            return done(RolloutDecision.HALT, stalled)
        p_drift, a_drift = ev.drift_pvalue, slo.drift_alpha
        if a_drift is not None and p_drift is not None and p_drift < a_drift:
            why = f"inputs differ (statistic {ev.drift_statistic}): comparison invalid"
            return done(
                RolloutDecision.HALT, [Reason("drift", "halt", p_drift, a_drift, True, name, why)]
            )
        pr = [_reason(k, "promote", t, name) for k, t in self._tests(ev, slo, "less", slo.alpha)]
        if ev.elapsed_s >= slo.max_duration_s:  # a bound: nothing is promoted after it
            lim = slo.max_duration_s
            r = Reason("duration", "halt", ev.elapsed_s, lim, True, name, "undecided")
            return done(RolloutDecision.HALT, [r, *pr])
        enough = _enough(ev.canary, slo) and _enough(ev.champion, slo)
        enough = enough and ev.elapsed_s >= slo.min_duration_s
        drift_ok = slo.drift_alpha is None or ev.drift_pvalue is not None
        ready = ev.step_requests >= slo.step_min_requests
        if pr and enough and drift_ok and all(r.fired for r in pr):
            return done(RolloutDecision.PROMOTE, pr, ready)
        return done(RolloutDecision.CONTINUE, rb + pr, ready)


def _intervals(ev: Evidence, slo: SLO) -> list[Reason]:
    """With a final verdict: the always-valid interval of the rate ratio canary/champion of
    errors and wrong predictions (statistic: lower end, bound: upper end; each at alpha)."""
    out = []
    for slo_name, kind, on in (
        ("error_rate", ERRORS, slo.error_margin is not None),
        ("quality", WRONG, slo.quality_margin is not None),
    ):
        if not on or kind >= ev.strata.shape[0]:
            continue
        lo, hi = ratio_bounds(float(ev.canary_bad[kind]), ev.strata[kind], slo.alpha)
        detail = f"rate ratio canary/champion in [{lo:.3g}, {hi:.3g}] (always valid)"
        out.append(Reason(slo_name, "interval", lo, hi, False, "driftd-sequential", detail))
    return out


def _rate(x: int, n: int) -> float:
    return x / n if n > 0 else math.nan


def _slow_diff(ev: Evidence, i: int) -> float:
    c, b = ev.canary.slows, ev.champion.slows
    x_c = c[i] if i < len(c) else 0
    x_b = b[i] if i < len(b) else 0
    return _rate(x_c, ev.canary.requests) - _rate(x_b, ev.champion.requests)


def _null_ratio(slo: SLO, margin: float, x_b: int, n_b: int) -> float:
    """The null rate ratio ψ0 for a margin: 1 + margin (relative), or (p̂_b + m) / p̂_b with
    the champion's estimate (absolute: a plug-in, accurate as the champion has most data)."""
    if slo.margins == "relative":
        return 1.0 + margin
    pb = (x_b + 0.5) / (n_b + 1.0)
    return max(pb + margin, 1e-12) / pb


def _strat(ev: Evidence, kind: int, psi0: float, alpha: float, side: Side, est: float) -> SeqTest:
    """The stratified test of one kind of bad event (no strata yet: no evidence)."""
    if kind >= ev.strata.shape[0]:
        return SeqTest(0.0, math.log(1.0 / alpha), psi0, est)
    x_c = float(ev.canary_bad[kind])
    return stratified_test(x_c, ev.strata[kind], psi0, alpha=alpha, side=side, estimate=est)


def _enough(arm: ArmCounts, slo: SLO) -> bool:
    if arm.requests < slo.min_samples:
        return False
    return slo.quality_margin is None or arm.labeled >= slo.min_labeled


def _interval_checks(
    d: ArmCounts, min_success: float, quantile: float, min_accuracy: float | None
) -> list[tuple[str, float | None, float, bool]]:
    """(metric, value or None for no data, threshold, passed) for one interval's canary."""
    out: list[tuple[str, float | None, float, bool]] = []
    sr = 1.0 - d.errors / d.requests if d.requests else None
    out.append(("success_rate", sr, min_success, sr is not None and sr >= min_success))
    # p99 <= ceiling  <=>  at most 1% of the interval's requests over the ceiling
    over = d.over_ceiling / d.requests if d.requests else None
    q = 1.0 - quantile
    out.append(("latency_p99", over, q, over is not None and over <= q))
    if min_accuracy is not None:
        acc = d.correct / d.labeled if d.labeled else None
        out.append(("accuracy", acc, min_accuracy, acc is not None and acc >= min_accuracy))
    return out


def _interval(ev: Evidence, k: int, interval_s: float) -> ArmCounts:
    return ev.at(k * interval_s).canary - ev.at((k - 1) * interval_s).canary


@dataclass(frozen=True)
class FlaggerRule:
    """Flagger's analysis: every ``interval_s`` check the canary alone (request success rate
    ≥ ``min_success``, p99 ≤ the ceiling the gatherer counts ``over_ceiling`` at, e.g. 500 ms,
    optionally a custom accuracy metric); a failed check — no data included — increments a
    counter that never resets; the tick after it reaches ``threshold`` rolls back; a passed
    check advances one iteration, and a passed check after ``iterations`` promotes."""

    interval_s: float = 60.0
    threshold: int = 5
    min_success: float = 0.99
    p99_max_ms: float = 500.0
    iterations: int = 10
    min_accuracy: float | None = None
    quantile: float = 0.99
    name: str = "flagger"

    def verdict(self, evidence: Evidence, slo: SLO) -> Verdict:
        """Replay the ticks up to ``evidence.elapsed_s``; the SLO is not used (fixed checks)."""
        failed = passed = 0
        reasons: list[Reason] = []
        for k in range(1, int(evidence.elapsed_s // self.interval_s) + 1):
            t = k * self.interval_s
            if failed >= self.threshold:
                r = Reason("failed_checks", "rollback", failed, self.threshold, True, self.name)
                return Verdict(RolloutDecision.ROLLBACK, self.name, t, (*reasons, r))
            checks = _interval_checks(
                _interval(evidence, k, self.interval_s),
                self.min_success,
                self.quantile,
                self.min_accuracy,
            )
            bad = [c for c in checks if not c[3]]
            if bad:
                failed += 1
                m, v, th, _ = bad[0]  # Flagger stops at the first failed metric
                val = math.nan if v is None else v
                reasons.append(Reason(m, "interval", val, th, True, self.name, f"tick {k}"))
            elif passed < self.iterations:
                passed += 1
            else:
                r = Reason("iterations", "promote", passed, self.iterations, True, self.name)
                return Verdict(RolloutDecision.PROMOTE, self.name, t, (*reasons, r))
        return Verdict(RolloutDecision.CONTINUE, self.name, evidence.elapsed_s, tuple(reasons))


@dataclass(frozen=True)
class ArgoRule:
    """Argo Rollouts' AnalysisRun: every ``interval_s`` each metric is measured; a metric
    whose failed measurements exceed ``failure_limit`` fails the run (rollback); no data is a
    measurement error, and more than ``consecutive_error_limit`` in a row errors the run
    (rollback too); after ``count`` measurements the run succeeds (promote)."""

    interval_s: float = 60.0
    failure_limit: int = 0
    count: int = 10
    consecutive_error_limit: int = 4
    min_success: float = 0.99
    p99_max_ms: float = 500.0
    min_accuracy: float | None = None
    quantile: float = 0.99

    @property
    def name(self) -> str:
        return f"argo-fl{self.failure_limit}"

    def verdict(self, evidence: Evidence, slo: SLO) -> Verdict:
        """Replay the measurements up to ``evidence.elapsed_s``; the SLO is not used."""
        failed: dict[str, int] = {}
        errors: dict[str, int] = {}
        n = min(int(evidence.elapsed_s // self.interval_s), self.count)
        for k in range(1, n + 1):
            t = k * self.interval_s
            checks = _interval_checks(
                _interval(evidence, k, self.interval_s),
                self.min_success,
                self.quantile,
                self.min_accuracy,
            )
            for m, v, _, ok in checks:
                errors[m] = errors.get(m, 0) + 1 if v is None else 0
                failed[m] = failed.get(m, 0) + (v is not None and not ok)
                if failed[m] > self.failure_limit:
                    r = Reason(m, "rollback", failed[m], self.failure_limit, True, self.name)
                    return Verdict(RolloutDecision.ROLLBACK, self.name, t, (r,))
                if errors[m] > self.consecutive_error_limit:
                    lim = self.consecutive_error_limit
                    r = Reason(m, "rollback", errors[m], lim, True, self.name, "no data")
                    return Verdict(RolloutDecision.ROLLBACK, self.name, t, (r,))
            if k == self.count:
                r = Reason("count", "promote", k, self.count, True, self.name)
                return Verdict(RolloutDecision.PROMOTE, self.name, t, (r,))
        return Verdict(RolloutDecision.CONTINUE, self.name, evidence.elapsed_s, ())
