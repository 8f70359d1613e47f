"""Canary analysis benchmark: driftd's rule + state machine vs Flagger, Argo and an mSPRT reference.

Run ``python benchmarks/canary.py`` (about 8 min on 2 cores; ``--quick`` for a smoke run).

Traffic is simulated per request, per second t: N_t ~ Poisson(rate(t)); each request carries
its own uniforms (routing, error, latency quantile, labelled?, correct?), drawn from the seed
alone, so every rule sees the same requests (common random numbers) and only the canary's
share decides which arm serves which request. Champion: errors 0.5 %, lognormal latency
(median 150 ms, p99 420 ms), classifier accuracy 92 %, 30 % of requests labelled 60 s later.
Latency enters as exceedance counts of the thresholds the gatherer uses (the champion's
p50/p90/p99/p99.9 τ_i; (1 + 10 %)·τ_i for the canary; 500 ms for the p99 ceiling), with exact
probabilities from each arm's latency distribution.

Who gets which canary share:
  * driftd: the share of its state machine's current step (``machine.start`` / ``decide``,
    rule evaluated every second, default steps 5 % -> 25 % -> 50 %, 60 s minimum per step),
    the default SLO (all of errors, latency and quality; no promotion before min_duration_s,
    360 s); in "null, 20 req/s, errors + latency SLOs" its quality SLO is off (and only
    there: Flagger and Argo keep their accuracy check).
  * Flagger / Argo: the same steps on a fixed clock, one step per 60 s analysis interval
    (5 % for 0-60 s, 25 % for 60-120 s, 50 % after), whatever their checks say; their rules
    see exactly those counts.
  * mSPRT reference: a monitor, not a controller (it never promotes, never moves traffic): it
    reads the very per-second counts driftd saw; after driftd stops, the traffic stays at
    driftd's last share until the scenario's max duration. Its time to rollback is therefore
    measured on the same data as driftd's.
In the "fixed share" scenario every rule runs at one share (``--fixed-share``, 10 %).
Flagger: every 60 s, success rate >= 99 %, p99 <= 500 ms, accuracy >= 88 % (champion - 4
points), rollback at 5 failed checks, promote after 10 passed; Argo: the same checks, 10
measurements, failure limit 0 or 3. Error storms (both arms at 10 % for 60 s) start at 120 s
and then every 300 s, or once at 400 s. The tail-only canary's quantile function is the
champion's below u = 0.99 and 2x it from u = 0.999, a smoothstep between.

driftd's plan: once per scenario, ``plan.make_plan`` on what the controller would read off the
champion's history (``controller.rates_of`` / ``plan.nulls_of``), here exact: the request rate at
start, the error rate, the wrong-prediction rate with the labelled fraction, and per latency
threshold p = 1 - q with the ratio an identical canary has at (1 + x)·τ_q vs τ_q. Its expected
time to promote a good canary and whether it called that reachable are the last two columns
of driftd's rows; the summaries of the plans that say "not reachable" follow the table.

Targets (driftd): false rollback <= alpha + 2 binomial s.e. in every null scenario and for the
good canary; detection >= 0.95 (0.9 at 10 req/s); promoted within the max duration with
probability >= 0.95 at >= 20 req/s (both 20 req/s scenarios too, the plan's verdict aside);
median time to promote <= 600 s at 100 req/s; median time
to rollback <= 1.2x the reference's on the same traffic.

The reference (independent of driftd's code): per second, condition on the bad events k_t of
both arms and that second's empirical share s_t; under H0 the canary's count is
Binomial(k_t, s_t). Its e-process is a mixture over odds ratios ψ > 1 (half-normal prior,
sd 1, on ln ψ; 64-point grid) of the product of per-second likelihood ratios (Lindon et al.
2022, "Rapid regression detection in software deployments through sequential testing").
One test per metric at alpha = 0.05 (reject at 1/alpha): errors; latency as one test per
threshold (p50, p90, p99, p99.9), Bonferroni alpha/4 each. It rolls back when either metric's
test rejects (so its own null false-rollback bound is 2·alpha; the targets compare driftd
with the test of the metric that regressed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from driftd.rollout.evidence import SLO, ArmCounts, Batch, Evidence, RolloutDecision
from driftd.rollout.machine import decide, start
from driftd.rollout.plan import Plan, Rates, make_plan, nulls_of
from driftd.rollout.rules import ArgoRule, FlaggerRule, SequentialRule

try:
    from benchmarks.report import Row, machine_info, print_rows
except ImportError:  # run as a script: python benchmarks/canary.py
    from report import Row, machine_info, print_rows  # type: ignore[no-redef,import-not-found]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "canary.json"
P_ERR = 0.005  # champion error rate
MEDIAN_MS, P99_MS = 150.0, 420.0  # champion latency: lognormal
SIGMA = math.log(P99_MS / MEDIAN_MS) / float(norm.ppf(0.99))
QUANTILES = (0.5, 0.9, 0.99, 0.999)  # the gatherer's latency thresholds τ_i (champion)
LAT_MARGIN = 0.10  # canary thresholds are (1 + this)·τ_i
CEILING_MS = 500.0  # Flagger/Argo p99 ceiling: over_ceiling counts requests slower
ACC = 0.92  # classifier accuracy, both arms
LABEL_FRAC, LABEL_DELAY = 0.3, 60
STEPS = (0.05, 0.25, 0.5)  # driftd's default traffic steps
STEP_MIN_S = 60.0
INTERVAL_S = 60  # Flagger/Argo analysis interval; also their step dwell
ALPHA = 0.05
ACC_MIN = 0.88  # Flagger/Argo custom accuracy check: champion - 4 points (~2 sd per minute)
TAIL_FROM, TAIL_TO, TAIL_X = 0.99, 0.999, 2.0  # tail-only scenario: quantile multiplier ramp
RULES = ("driftd", "flagger", "argo-fl0", "argo-fl3", "msprt-ref")
DECISIONS = ("rollback", "promote", "halt", "undecided")

# Reference mixture: ln ψ on a grid over (0, 4], weights from a half-normal(sd 1) prior.
_LOG_PSI = np.linspace(4.0 / 64, 4.0, 64)
_LOG_W = np.log(norm.pdf(_LOG_PSI) / norm.pdf(_LOG_PSI).sum())


@dataclass(frozen=True)
class Scenario:
    """One simulated canary: traffic, what the canary does differently, and what it should get."""

    key: str
    name: str
    kind: str  # "null" (canary = champion), "regression" or "good"
    rate: float = 100.0  # requests/s, both arms together
    rate_end: float | None = None  # linear ramp from ``rate`` to this over ``ramp_s``
    ramp_s: float = 1_800.0
    fixed_share: bool = False  # one share for every rule, no steps
    p_err: float = P_ERR  # champion's error rate (and the canary's unless changed)
    p_err_canary: float | None = None  # canary's error rate from ``onset_s`` on
    onset_s: float = 0.0
    storms: tuple[float, ...] = ()  # storm start times: both arms at ``storm_p`` for storm_s
    storm_s: float = 60.0
    storm_p: float = 0.10
    lat_scale: float = 1.0  # canary latency = champion's x this (lognormal scale shift)
    tail: bool = False  # canary's quantile function ramps to 2x above u = 0.99
    acc_canary: float = ACC
    quality: bool = True  # driftd's quality SLO on (False: errors + latency SLOs only)
    max_duration_s: float = 1_800.0
    detect_target: float | None = None  # rollback probability driftd must reach
    metric: str = ""  # "errors" or "latency": which reference test the ratio target reads


def _storms(first: float, period: float, until: float) -> tuple[float, ...]:
    return tuple(float(x) for x in np.arange(first, until, period))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("null-fixed", "null, fixed share, 100 req/s", "null", fixed_share=True),
    Scenario("null-steps", "null, steps 5/25/50 %, 100 req/s", "null"),
    Scenario(
        "null-storms",
        "null, error storms 10 % 60 s every 300 s",
        "null",
        storms=_storms(120.0, 300.0, 1_800.0),
    ),
    Scenario("null-storm400", "null, one error storm at 400 s", "null", storms=(400.0,)),
    Scenario("null-unhealthy", "null, unhealthy baseline 1.5 % errors", "null", p_err=0.015),
    Scenario(
        "null-rising",
        "null, traffic 20 -> 200 req/s over 30 min",
        "null",
        rate=20.0,
        rate_end=200.0,
        max_duration_s=7_200.0,
    ),
    Scenario("null-20rps", "null, 20 req/s", "null", rate=20.0),
    Scenario(
        "null-20rps-el", "null, 20 req/s, errors + latency SLOs", "null", rate=20.0, quality=False
    ),
    Scenario("null-10rps", "null, 10 req/s", "null", rate=10.0),
    Scenario(
        "err4-100",
        "errors x4 (0.5 -> 2 %), 100 req/s",
        "regression",
        p_err_canary=0.02,
        detect_target=0.95,
        metric="errors",
    ),
    Scenario(
        "err4-50",
        "errors x4, 50 req/s",
        "regression",
        rate=50.0,
        p_err_canary=0.02,
        detect_target=0.95,
        metric="errors",
    ),
    Scenario(
        "err4-10",
        "errors x4, 10 req/s",
        "regression",
        rate=10.0,
        p_err_canary=0.02,
        detect_target=0.90,
        metric="errors",
    ),
    Scenario(
        "p99+30",
        "latency p99 +30 % (scale x1.3)",
        "regression",
        lat_scale=1.3,
        detect_target=0.95,
        metric="latency",
    ),
    Scenario(
        "tail-p999x2",
        "tail only: p99.9 x2, p50 same",
        "regression",
        tail=True,
        detect_target=0.95,
        metric="latency",
    ),
    Scenario(
        "delayed-err4",
        "errors x4 from 240 s on",
        "regression",
        p_err_canary=0.02,
        onset_s=240.0,
        detect_target=0.95,
        metric="errors",
    ),
    Scenario("good", "good canary: errors 0.3 %", "good", p_err_canary=0.003),
)
QUICK = ("null-steps", "null-storms", "err4-100", "p99+30", "tail-p999x2", "good")


# --- latency: exact exceedance probabilities ------------------------------------------------


def champion_q(u: float) -> float:
    """The champion's latency quantile function (ms)."""
    return MEDIAN_MS * math.exp(SIGMA * float(norm.ppf(u)))


def champion_cdf(x: float) -> float:
    """P(champion latency ≤ x ms)."""
    return float(norm.cdf(math.log(x / MEDIAN_MS) / SIGMA))


def tail_multiplier(u: float) -> float:
    """Tail-only canary: its quantile is the champion's x this; 1 below u = 0.99, 2 from 0.999,
    a C¹ smoothstep between (so the quantile function stays increasing)."""
    x = min(max((u - TAIL_FROM) / (TAIL_TO - TAIL_FROM), 0.0), 1.0)
    return 1.0 + (TAIL_X - 1.0) * x * x * (3.0 - 2.0 * x)


def canary_cdf(x: float, sc: Scenario) -> float:
    """P(canary latency ≤ x ms), exact: a scale shift, or the tail-only quantile function
    inverted by root finding where the multiplier ramps."""
    if not sc.tail:
        return champion_cdf(x / sc.lat_scale)
    if x <= champion_q(TAIL_FROM):
        return champion_cdf(x)
    if x >= TAIL_X * champion_q(TAIL_TO):
        return champion_cdf(x / TAIL_X)
    return float(
        brentq(
            lambda u: tail_multiplier(u) * champion_q(u) - x,
            TAIL_FROM,
            TAIL_TO,
            xtol=1e-15,
            rtol=1e-15,
        )
    )


def latency_cdfs(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """CDF at each counted threshold, (champion, canary): the τ_i for the champion, (1+m)·τ_i
    for the canary, then the ceiling for both. A request is over a threshold when its latency
    quantile U exceeds the CDF there."""
    taus = [champion_q(q) for q in QUANTILES]
    cham = [champion_cdf(t) for t in taus] + [champion_cdf(CEILING_MS)]
    can = [canary_cdf((1.0 + LAT_MARGIN) * t, sc) for t in taus] + [canary_cdf(CEILING_MS, sc)]
    return np.array(cham), np.array(can)


# --- traffic ----------------------------------------------------------------------------------

# Per-second count fields of one arm, in this order (labeled/correct by request time).
FIELDS = (
    "requests",
    "errors",
    *(f"slow{i}" for i in range(len(QUANTILES))),
    "over_ceiling",
    "labeled",
    "correct",
)
NF = len(FIELDS)
F_ERR, F_SLOW, F_OVER, F_LAB, F_COR = (
    1,
    2,
    2 + len(QUANTILES),
    3 + len(QUANTILES),
    4 + len(QUANTILES),
)


def rates(sc: Scenario, t_max: int) -> np.ndarray:
    """Requests/s for each second."""
    t = np.arange(t_max, dtype=float)
    if sc.rate_end is None:
        return np.full(t_max, sc.rate)
    return sc.rate + (sc.rate_end - sc.rate) * np.minimum(t / sc.ramp_s, 1.0)


def error_probs(sc: Scenario, t_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-second error probabilities (champion, canary)."""
    t = np.arange(t_max, dtype=float)
    cham = np.full(t_max, sc.p_err)
    for s0 in sc.storms:
        cham[(t >= s0) & (t < s0 + sc.storm_s)] = sc.storm_p
    can = cham.copy()
    if sc.p_err_canary is not None:
        on = t >= sc.onset_s
        can[on] = np.where(cham[on] == sc.p_err, sc.p_err_canary, cham[on])
    return cham, can


def shares_of(sc: Scenario, fixed_share: float) -> tuple[float, ...]:
    """The traffic steps of a scenario."""
    return (fixed_share,) if sc.fixed_share else STEPS


def simulate(sc: Scenario, seed: int, shares: Sequence[float]) -> np.ndarray:
    """Per-second counts if the canary's share were ``shares[k]`` all along: int array
    (k, t, arm, field), arm 0 the canary, 1 the champion. Labels sit at their request's second.

    Every request draws its routing, error, latency-quantile, label and correctness uniforms
    from the seed alone, so the same seed gives the same requests whatever the share or rule."""
    t_max = int(sc.max_duration_s)
    rng = np.random.default_rng([20_240_601, seed])
    n = rng.poisson(rates(sc, t_max))
    sec = np.repeat(np.arange(t_max), n)
    u_route, u_err, u_lat, u_lab, u_cor = rng.random((5, sec.size))
    p_cham, p_can = error_probs(sc, t_max)
    cdf_cham, cdf_can = latency_cdfs(sc)
    labelled = u_lab < LABEL_FRAC
    per_arm = []
    for p, cdf, acc in ((p_can, cdf_can, sc.acc_canary), (p_cham, cdf_cham, ACC)):
        ind = [np.ones(sec.size, dtype=bool), u_err < p[sec]]
        ind += [u_lat > c for c in cdf]
        ind += [labelled, labelled & (u_cor < acc)]
        per_arm.append(ind)
    out = np.zeros((len(shares), t_max, 2, NF), dtype=np.int64)
    for k, s in enumerate(shares):
        to_canary = u_route < s
        for arm, mask in ((0, to_canary), (1, ~to_canary)):
            for f, ind in enumerate(per_arm[arm]):
                out[k, :, arm, f] = np.bincount(sec[ind & mask], minlength=t_max)
    return out


def arm_counts(row: Sequence[int], lab: Sequence[int] | None) -> ArmCounts:
    """One arm's ArmCounts for one second: ``row`` this second's counts, ``lab`` the counts of
    the second whose labels arrive now (None: none yet)."""
    nq = len(QUANTILES)
    return ArmCounts(
        requests=row[0],
        errors=row[F_ERR],
        slow=tuple(row[F_SLOW : F_SLOW + nq]),
        over_ceiling=row[F_OVER],
        labeled=lab[F_LAB] if lab is not None else 0,
        correct=lab[F_COR] if lab is not None else 0,
    )


def batch_at(counts: list[Any], t: int, k: int, k_lab: int | None, step: int) -> Batch:
    """Second t's batch (ending at t + 1 s) at share index k; labels from t - 60 at k_lab."""
    row = counts[k][t]
    lab = counts[k_lab][t - LABEL_DELAY] if k_lab is not None else None
    return Batch(
        elapsed_s=float(t + 1),
        canary=arm_counts(row[0], lab[0] if lab is not None else None),
        champion=arm_counts(row[1], lab[1] if lab is not None else None),
        step=step,
    )


# --- the rules ----------------------------------------------------------------------------------


def driftd_slo(sc: Scenario) -> SLO:
    """driftd's SLO: the defaults, inputs identical (no drift test), the scenario's max duration
    (the quality SLO switched off where the scenario says so)."""
    slo = SLO(
        alpha=ALPHA,
        latency_margin=LAT_MARGIN,
        latency_quantiles=QUANTILES,
        drift_alpha=None,
        max_duration_s=sc.max_duration_s,
    )
    return slo if sc.quality else replace(slo, quality_margin=None)


# --- driftd's plan ------------------------------------------------------------------------------


def plan_rates(sc: Scenario, slo: SLO) -> Rates:
    """What ``controller.rates_of`` reads off the champion's history, from the simulation's exact
    distribution: the request rate at start, the error and wrong-prediction rates (labelled
    fraction per request), and per latency threshold p = 1 - q with the ratio an identical
    canary has at (1 + x)·τ_q vs τ_q."""
    x = slo.latency_margin or 0.0
    bad: dict[str, tuple[float, float]] = {
        "error_rate": (sc.p_err, 1.0),
        "quality": (1.0 - ACC, 1.0),
    }
    for q in slo.latency_quantiles:
        tau = champion_q(q)
        over = 1.0 - champion_cdf(tau)
        bad[f"latency_q{q:g}"] = (over, (1.0 - champion_cdf(tau * (1.0 + x))) / over)
    return Rates(float(rates(sc, 1)[0]), bad, {"quality": LABEL_FRAC})


def driftd_plan(sc: Scenario, fixed_share: float) -> Plan:
    """driftd's plan for the scenario, computed once as the controller would at the start."""
    slo = driftd_slo(sc)
    r = plan_rates(sc, slo)
    return make_plan(r, shares_of(sc, fixed_share), STEP_MIN_S, slo, nulls_of(slo, r))


_KIND = {
    "promote": "promote",
    "rollback": "rollback",
    "halt": "halt",
}


def run_driftd(
    sc: Scenario, counts: list[Any], shares: tuple[float, ...]
) -> tuple[str, float, list[int]]:
    """driftd's rule every second, its state machine moving the share: (decision, time, step
    index of each second simulated)."""
    slo, rule = driftd_slo(sc), SequentialRule()
    r, _ = start("bench", "model", canary=2, champion=1, steps=shares, now=0.0)
    ev = Evidence(keep_history=False)
    hist: list[int] = []
    for t in range(int(sc.max_duration_s)):
        k = r.step
        hist.append(k)
        k_lab = hist[t - LABEL_DELAY] if t >= LABEL_DELAY else None
        ev = ev.add(batch_at(counts, t, k, k_lab, k))
        v = rule.verdict(ev, slo)
        r, action = decide(r, v, now=float(t + 1), step_min_s=STEP_MIN_S)
        if action is not None and action.kind in _KIND:
            return _KIND[action.kind], float(t + 1), hist
    return "undecided", math.inf, hist


def interval_rules() -> list[Any]:
    """Flagger and Argo (failure limits 0 and 3), 60 s intervals, with the accuracy check."""
    return [
        FlaggerRule(interval_s=INTERVAL_S, threshold=5, min_success=0.99, min_accuracy=ACC_MIN),
        ArgoRule(interval_s=INTERVAL_S, failure_limit=0, min_accuracy=ACC_MIN),
        ArgoRule(interval_s=INTERVAL_S, failure_limit=3, min_accuracy=ACC_MIN),
    ]


def run_interval_rules(sc: Scenario, counts: list[Any], n_shares: int) -> list[tuple[str, float]]:
    """Flagger and Argo on the clock schedule (one step per interval), asked at every interval
    end until each decides or the scenario's max duration passes."""
    rules, slo = interval_rules(), driftd_slo(sc)
    out: list[tuple[str, float]] = [("undecided", math.inf)] * len(rules)
    live = set(range(len(rules)))
    ev = Evidence(keep_history=True)
    for t in range(int(sc.max_duration_s)):
        k = min(t // INTERVAL_S, n_shares - 1)
        k_lab = min((t - LABEL_DELAY) // INTERVAL_S, n_shares - 1) if t >= LABEL_DELAY else None
        ev = ev.add(batch_at(counts, t, k, k_lab, k))
        if (t + 1) % INTERVAL_S:
            continue
        for i in sorted(live):
            v = rules[i].verdict(ev, slo)
            if v.decision is not RolloutDecision.CONTINUE:
                out[i] = (v.decision.value, float(v.elapsed_s))
                live.discard(i)
        if not live:
            break
    return out


def msprt_log_e(x: np.ndarray, y: np.ndarray, n_c: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """ln of the reference e-process after each second: canary bad ``x`` and champion bad ``y``
    per second, requests ``n_c``/``n_b``. Per second, given k = x + y and s = n_c/(n_c + n_b),
    the likelihood ratio of π1 = odds(s, ψ) against s; product over seconds, mixed over ψ."""
    n = n_c + n_b
    ok = (n_c > 0) & (n_b > 0) & (x + y > 0)
    s = np.where(ok, n_c / np.maximum(n, 1), 0.5)
    psi = np.exp(_LOG_PSI)[None, :]
    p1 = s[:, None] * psi / (s[:, None] * psi + 1.0 - s[:, None])
    xs, ys = np.where(ok, x, 0)[:, None], np.where(ok, y, 0)[:, None]
    ll = xs * np.log(p1 / s[:, None]) + ys * np.log((1.0 - p1) / (1.0 - s[:, None]))
    cum = np.cumsum(ll, axis=0) + _LOG_W[None, :]
    top = cum.max(axis=1)
    log_e: np.ndarray = top + np.log(np.exp(cum - top[:, None]).sum(axis=1))
    return log_e


def first_crossing(log_e: np.ndarray, alpha: float) -> float:
    """Time (s, end of the second) the e-process first reaches 1/alpha; inf if never."""
    hit = np.flatnonzero(log_e >= math.log(1.0 / alpha))
    return float(hit[0] + 1) if hit.size else math.inf


def run_reference(counts: np.ndarray, hist: list[int]) -> dict[str, float]:
    """The per-second conditional mSPRT on driftd's traffic (its share index per second, then
    its last one): time each metric's test rejects."""
    t_max = counts.shape[1]
    idx = np.array(hist + [hist[-1]] * (t_max - len(hist)))
    c = counts[idx, np.arange(t_max)]  # (t, arm, field)
    n_c, n_b = c[:, 0, 0], c[:, 1, 0]
    t_err = first_crossing(msprt_log_e(c[:, 0, F_ERR], c[:, 1, F_ERR], n_c, n_b), ALPHA)
    nq = len(QUANTILES)
    t_lat = min(
        first_crossing(msprt_log_e(c[:, 0, F_SLOW + i], c[:, 1, F_SLOW + i], n_c, n_b), ALPHA / nq)
        for i in range(nq)
    )
    return {"errors": t_err, "latency": t_lat}


def run_seed(task: tuple[Scenario, int, float]) -> dict[str, Any]:
    """Every rule on one seed of one scenario: {rule: (decision, time)} plus the reference's
    per-metric times."""
    sc, seed, fixed_share = task
    shares = shares_of(sc, fixed_share)
    arr = simulate(sc, seed, shares)
    counts = arr.tolist()
    out: dict[str, Any] = {"scenario": sc.key, "seed": seed}
    dec, t_d, hist = run_driftd(sc, counts, shares)
    out["driftd"] = (dec, t_d)
    for name, res in zip(RULES[1:4], run_interval_rules(sc, counts, len(shares)), strict=True):
        out[name] = res
    ref = run_reference(arr, hist)
    t_ref = min(ref.values())
    out["msprt-ref"] = ("rollback", t_ref) if math.isfinite(t_ref) else ("undecided", math.inf)
    out["ref_metric_s"] = ref
    return out


# --- statistics and output --------------------------------------------------------------------


def _q(x: Sequence[float], q: float) -> float:
    """Quantile (inverted CDF: an actual observation; inf when fewer than q of runs decided)."""
    return float(np.quantile(np.asarray(x, dtype=float), q, method="inverted_cdf"))


@dataclass
class Stats:
    """One rule on one scenario over its seeds."""

    n: int
    rollback: float
    promote: float
    halt: float
    undecided: float
    ttr_median_s: float
    ttr_p90_s: float
    promote_median_s: float
    promote_p90_s: float
    ref_metric_median_s: dict[str, float] = field(default_factory=dict)


def summarise(runs: list[dict[str, Any]], rule: str) -> Stats:
    """Rates and time quantiles; times of runs that did not end that way count as inf."""
    dec = [r[rule][0] for r in runs]
    t_rb = [r[rule][1] if r[rule][0] == "rollback" else math.inf for r in runs]
    t_pr = [r[rule][1] if r[rule][0] == "promote" else math.inf for r in runs]
    n = len(runs)
    st = Stats(
        n=n,
        rollback=dec.count("rollback") / n,
        promote=dec.count("promote") / n,
        halt=dec.count("halt") / n,
        undecided=dec.count("undecided") / n,
        ttr_median_s=_q(t_rb, 0.5),
        ttr_p90_s=_q(t_rb, 0.9),
        promote_median_s=_q(t_pr, 0.5),
        promote_p90_s=_q(t_pr, 0.9),
    )
    if rule == "msprt-ref":
        for m in ("errors", "latency"):
            st.ref_metric_median_s[m] = _q([r["ref_metric_s"][m] for r in runs], 0.5)
    return st


def false_rollback_limit(n: int, alpha: float = ALPHA) -> float:
    """alpha plus two binomial standard errors at n seeds: what a sound rule's measured false
    rollback rate stays under (about 97.5 % of the time)."""
    return alpha + 2.0 * math.sqrt(alpha * (1.0 - alpha) / n)


def _s(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.0f}"


def print_table(
    res: dict[str, dict[str, Stats]],
    scenarios: Sequence[Scenario],
    plans: dict[str, Plan],
    title: str,
) -> None:
    """Every scenario x rule: detection (regressions) or false rollback (null/good), times; on
    driftd's row its plan (expected time to promote a good canary, reachable?), and below the
    table the summary of every plan that says not reachable."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    cols = (
        "scenario",
        "rule",
        "detect",
        "ttr med",
        "ttr p90",
        "false rb",
        "promote",
        "prom med",
        "prom p90",
        "halt",
        "undecided",
        "plan s",
        "reachable",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("scenario", "rule") else "right")
    for sc in scenarios:
        for i, rule in enumerate(RULES):
            x = res[sc.key][rule]
            reg = sc.kind == "regression"
            plan = plans[sc.key] if rule == "driftd" else None
            table.add_row(
                sc.name if i == 0 else "",
                rule,
                f"{x.rollback:.2f}" if reg else "",
                _s(x.ttr_median_s),
                _s(x.ttr_p90_s),
                "" if reg else f"{x.rollback:.2f}",
                f"{x.promote:.2f}" if rule != "msprt-ref" else "",
                _s(x.promote_median_s) if rule != "msprt-ref" else "",
                _s(x.promote_p90_s) if rule != "msprt-ref" else "",
                f"{x.halt:.2f}" if rule != "msprt-ref" else "",
                f"{x.undecided:.2f}",
                _s(plan.expected_total_s) if plan else "",
                ("yes" if plan.reachable else "no") if plan else "",
                end_section=i == len(RULES) - 1,
            )
    console = Console(width=200)
    console.print(table)
    for sc in scenarios:
        if not plans[sc.key].reachable:
            console.print(f"driftd's plan, {sc.key}: {plans[sc.key].summary()}", highlight=False)


def build_rows(
    res: dict[str, dict[str, Stats]], scenarios: Sequence[Scenario], plans: dict[str, Plan]
) -> list[Row]:
    """The targets driftd is judged by (promotion rows note what driftd's plan expected)."""
    rows: list[Row] = []
    for sc in scenarios:
        d = res[sc.key]["driftd"]
        pl = plans[sc.key]
        plan_note = f"plan ~{_s(pl.expected_total_s)} s, {'' if pl.reachable else 'not '}reachable"
        if sc.kind in ("null", "good"):
            lim = false_rollback_limit(d.n)
            rows.append(
                Row(
                    f"{sc.key}: false rollback",
                    d.rollback,
                    "",
                    target={"op": "<=", "value": round(lim, 4), "of": "value"},
                    note=f"alpha {ALPHA} + 2 s.e. at {d.n} seeds",
                )
            )
            if sc.rate >= 20.0:
                rows.append(
                    Row(
                        f"{sc.key}: promoted within max duration",
                        d.promote,
                        "",
                        target={"op": ">=", "value": 0.95, "of": "value"},
                        note=f"max {sc.max_duration_s:.0f} s; {plan_note}",
                    )
                )
            else:
                rows.append(
                    Row(
                        f"{sc.key}: promoted within max duration",
                        d.promote,
                        "",
                        note=f"max {sc.max_duration_s:.0f} s; no target below 20 req/s; "
                        + plan_note,
                    )
                )
            if sc.rate == 100.0 and sc.rate_end is None:
                rows.append(
                    Row(
                        f"{sc.key}: time to promote, median",
                        d.promote_median_s,
                        "s",
                        target={"op": "<=", "value": 600, "of": "value"},
                    )
                )
        else:
            rows.append(
                Row(
                    f"{sc.key}: detection",
                    d.rollback,
                    "",
                    target={"op": ">=", "value": sc.detect_target or 0.95, "of": "value"},
                    note=f"{sc.rate:.0f} req/s",
                )
            )
            ref = res[sc.key]["msprt-ref"].ref_metric_median_s[sc.metric]
            med = d.ttr_median_s
            ratio = med / ref if math.isfinite(ref) and ref > 0 else None
            rows.append(
                Row(
                    f"{sc.key}: time to rollback, median",
                    med,
                    "s",
                    baseline=ref if math.isfinite(ref) else None,
                    ratio=ratio,
                    target={"op": "<=", "value": 1.2, "of": "ratio"},
                    note=f"vs per-second mSPRT ({sc.metric} test), same traffic",
                )
            )
    return [r.judge() for r in rows]


def _finite(x: Any) -> Any:
    """JSON: inf as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    return x


_EXPECT = {"null": "should promote", "good": "should promote", "regression": "should roll back"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(
        prog="python benchmarks/canary.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios (--scenarios takes these keys):\n"
        + "\n".join(
            f"  {s.key:<15} {s.name}; {_EXPECT[s.kind]}, max {s.max_duration_s:.0f} s"
            for s in SCENARIOS
        )
        + "\n\nPrints a table (scenario x rule) and the target rows; writes the JSON to --out.",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: 20 seeds, scenarios {', '.join(QUICK)} (< 60 s on 2 cores)",
    )
    ap.add_argument("--seeds", type=int, help="seeds per scenario (default 100; --quick 20)")
    ap.add_argument("--scenarios", help="comma-separated scenario keys to run (default: all)")
    ap.add_argument(
        "--fixed-share",
        type=float,
        default=0.1,
        help="canary share in the fixed-share scenario (default 0.1)",
    )
    ap.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all CPUs)"
    )
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})"
    )
    args = ap.parse_args(argv)
    args.seeds = args.seeds or (20 if args.quick else 100)
    keys = args.scenarios.split(",") if args.scenarios else (QUICK if args.quick else None)
    known = {s.key: s for s in SCENARIOS}
    if keys is not None and (bad := [k for k in keys if k not in known]):
        ap.error(f"unknown scenario(s) {bad}; known: {', '.join(known)}")
    args.scenario_list = [known[k] for k in keys] if keys else list(SCENARIOS)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every scenario x seed in a process pool, print the tables, write the JSON."""
    args = parse_args(argv)
    t0 = time.perf_counter()
    tasks = [
        (sc, seed, args.fixed_share) for sc in args.scenario_list for seed in range(args.seeds)
    ]
    runs: dict[str, list[dict[str, Any]]] = {sc.key: [] for sc in args.scenario_list}
    with Pool(max(args.jobs, 1)) as pool:
        for i, out in enumerate(pool.imap_unordered(run_seed, tasks, chunksize=2), start=1):
            runs[out["scenario"]].append(out)
            if i % max(len(tasks) // 10, 1) == 0:
                print(f"{i}/{len(tasks)} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    res = {k: {rule: summarise(v, rule) for rule in RULES} for k, v in runs.items()}
    plans = {sc.key: driftd_plan(sc, args.fixed_share) for sc in args.scenario_list}
    mode = "quick" if args.quick else "full"
    print_table(
        res,
        args.scenario_list,
        plans,
        f"canary rules on the same simulated traffic ({mode}, {args.seeds} seeds; "
        "times in s from canary start; '-': fewer than 50 % (median) or 90 % (p90) of runs "
        "ended that way; plan s: driftd's expected time to promote a good canary)",
    )
    rows = build_rows(res, args.scenario_list, plans)
    print_rows(rows, f"driftd canary targets ({mode}, {args.seeds} seeds per scenario)")
    total = round(time.perf_counter() - t0, 1)
    doc = {
        "machine": machine_info(loadavg_at_end=os.getloadavg(), jobs=args.jobs),
        "rows": [_finite(r.as_json()) for r in rows],
        "results": {k: {rule: _finite(asdict(s)) for rule, s in v.items()} for k, v in res.items()},
        "plans": {k: p.to_dict() for k, p in plans.items()},
        "params": {
            "quick": args.quick,
            "seeds": args.seeds,
            "scenarios": [_finite(asdict(s)) for s in args.scenario_list],
            "fixed_share": args.fixed_share,
            "steps": STEPS,
            "step_min_s": STEP_MIN_S,
            "interval_s": INTERVAL_S,
            "latency": {
                "median_ms": MEDIAN_MS,
                "p99_ms": P99_MS,
                "quantiles": QUANTILES,
                "margin": LAT_MARGIN,
                "ceiling_ms": CEILING_MS,
            },
            "labels": {"fraction": LABEL_FRAC, "delay_s": LABEL_DELAY, "accuracy": ACC},
            "rules": [repr(r) for r in interval_rules()],
            "slo": repr(driftd_slo(SCENARIOS[0])),
            "reference": {
                "alpha": ALPHA,
                "log_psi_grid": [float(_LOG_PSI[0]), float(_LOG_PSI[-1]), len(_LOG_PSI)],
                "prior": "half-normal sd 1 on ln psi",
            },
            "total_s": total,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {total} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
