"""Detection delay at one fresh-stream false-alarm rate: driftd's best vs River's best.

Each detector's threshold is set by ``calibrate()`` to 1 false alarm per 100k values on fresh
stationary streams of 20k values (a 50k reference drawn from the pre-change distribution) and
checked on independent fresh streams; only detectors whose checked rate is at most 1.5x the
target compete. Each then runs over ``N`` change streams: ``WARMUP`` values from the pre-change
distribution, then ``BUDGET`` values after the change, a fresh detector per stream. The delay
is the number of values after the change up to and including the first drift alarm (missed
when none comes within ``BUDGET``); alarms before the change are counted apart (the detector
restarts after each, as driftd runs it) and do not end the stream.

River: its ADWIN, PageHinkley, DDM, EDDM, HDDM_A, HDDM_W and KSWIN give the same alarms as
driftd's at the same parameters, so River "at the equal rate" is River's detector at the
threshold ``calibrate()`` found for driftd's. That is checked, not assumed: River itself runs
value by value over the first ``M`` change streams and over ``R`` values of fresh stationary
streams (its own false-alarm count is reported), and every alarm index is compared with
driftd's on the same streams. Where all match, River's delays over all ``N`` streams are those
of driftd's identical detector (driftd's batch path is much faster); where any differ the row
says MISMATCH and uses River's own runs. River's KSWIN is checked on one change stream only
(it is slow value by value). River has no CUSUM, so the only ways driftd's best can beat
River's best at the equal rate are CUSUM and ``calibrate()`` itself (River has no way to set a
threshold for a target rate); at equal parameters the other detectors tie by construction.
River at its defaults is shown too, with its fresh-stream rate beside its delay (what a River
user gets).

Detectors set for the shift to detect (``--no-tuned`` skips them): driftd's CUSUM with ``k``
half the shift in pre-change sd and a 1,000-value warm-up, and PageHinkley with ``delta`` half
the shift (River's PageHinkley takes the same ``delta``: its twin is checked like the others),
each with its threshold from ``calibrate()``: what a user who knows the size of the change
would set, on both sides alike.

Rows D1: each detector calibrated, per scenario; D2: River's defaults; D3: per scenario,
driftd's best vs River's best at the equal rate, ratio = River's median delay / driftd's (> 1:
driftd detects sooner; no target: a detector both sides have ties by construction); D4: per
scenario, driftd's best calibrated detector vs the best that River's defaults give within the
same rate budget (at most 1.5x the target on fresh streams): what ``calibrate()`` buys a user
who would otherwise pick among defaults; D5: as D3 with the detectors set for the shift
competing too. D3's note gives ``ln(1e5) / KL(post || pre)``, the asymptotic (Lorden) order of
the least worst-case mean delay at an average run length of 1e5 values: a reference scale,
not a strict bound at this finite rate and these fresh 20k-value streams (calibrated ADWIN's
median and mean come in below it on the Bernoulli scenarios).

Run ``python benchmarks/detectors_delay.py`` (``--quick`` for a smoke run of a few seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import river
from river import drift as rdrift
from river.drift import binary as rbinary

from driftd.detectors import ADWIN, CUSUM, DDM, EDDM, HDDM_A, HDDM_W, KSWIN, PageHinkley
from driftd.detectors.base import Detector
from driftd.detectors.calibrate import THRESHOLDS, calibrate
from driftd.detectors.rates import (
    GENERATORS,
    FreshRate,
    StreamGenerator,
    bernoulli,
    fresh_rate,
    fresh_streams,
    poisson_interval,
    stream_rng,
)

try:
    from benchmarks.report import Row, machine_info, print_rows
except ImportError:  # run as a script: python benchmarks/detectors_delay.py
    from report import Row, machine_info, print_rows  # type: ignore[no-redef,import-not-found]

F64 = npt.NDArray[np.float64]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "detectors_delay.json"
TARGET = 1.0  # false alarms per 100k values
BAND_HIGH = 1.5  # a calibrated detector competes when its checked rate is <= this x TARGET
HORIZON = 20_000  # values per fresh stationary stream (calibration and rate checks)
WARMUP = 5_000  # pre-change values of every change stream
BUDGET = 20_000  # values after the change; no alarm by then is a miss
REFERENCE_N = 50_000
CHUNK = 5_000  # values per update() on change streams (stop after the first post-change alarm)
SEED_REF, SEED_CAL, SEED_CHECK, SEED_RIVER, SEED_DELAY = 7, 0, 1_000, 2_000, 3_000
SLOW = {"KSWIN"}  # about 0.4M values/s in driftd, 3k values/s in River

BERN_DETS = ("ADWIN", "PageHinkley", "CUSUM", "DDM", "EDDM", "HDDM_A", "HDDM_W")
NUM_DETS = ("ADWIN", "PageHinkley", "CUSUM", "KSWIN")

# driftd's defaults, River's defaults, River's detector at calibrate()'s threshold value v
# (the same companion bounds as calibrate.THRESHOLDS's builders)
DRIFTD_DEFAULT: dict[str, Callable[[], Detector]] = {
    "ADWIN": ADWIN,
    "PageHinkley": PageHinkley,
    "CUSUM": CUSUM,
    "DDM": DDM,
    "EDDM": EDDM,
    "HDDM_A": HDDM_A,
    "HDDM_W": HDDM_W,
    "KSWIN": KSWIN,
}
RIVER_DEFAULT: dict[str, Callable[[], Any]] = {
    "ADWIN": rdrift.ADWIN,
    "PageHinkley": rdrift.PageHinkley,
    "DDM": rbinary.DDM,
    "EDDM": rbinary.EDDM,
    "HDDM_A": rbinary.HDDMA,
    "HDDM_W": rbinary.HDDMW,
    "KSWIN": lambda: rdrift.KSWIN(seed=0),  # driftd's KSWIN seeds 0 by default
}
RIVER_AT: dict[str, Callable[[float], Any]] = {
    "ADWIN": lambda v: rdrift.ADWIN(delta=v),  # type: ignore[no-untyped-call]
    "PageHinkley": lambda v: rdrift.PageHinkley(threshold=v),
    "DDM": lambda v: rbinary.DDM(warning_threshold=min(2.0, v), drift_threshold=v),
    "EDDM": lambda v: rbinary.EDDM(alpha=max(0.95, v), beta=v),
    "HDDM_A": lambda v: rbinary.HDDMA(  # type: ignore[no-untyped-call]
        drift_confidence=v, warning_confidence=max(0.005, v)
    ),
    "HDDM_W": lambda v: rbinary.HDDMW(  # type: ignore[no-untyped-call]
        drift_confidence=v, warning_confidence=max(0.005, v)
    ),
    "KSWIN": lambda v: rdrift.KSWIN(alpha=v, seed=0),
}


@dataclass(frozen=True)
class Tuned:
    """A detector set for the shift to detect; ``calibrate()`` then sets its threshold."""

    name: str
    parameter: str
    bounds: tuple[float, float]
    build: Callable[[float], Detector]
    river_at: Callable[[float], Any] | None


TUNED_WARM_START = 1_000  # CUSUM's warm-up when set for the shift: its target and scale matter


def tuned(sc: Scenario) -> list[Tuned]:
    """CUSUM with ``k`` half the shift (in sd) and a longer warm-up; PageHinkley with ``delta``
    half the shift (River's PageHinkley takes the same ``delta``): what a user who knows the
    size of the change to catch would set, on both sides alike."""
    k, delta = sc.shift / (2 * sc.sd), sc.shift / 2
    return [
        Tuned(
            f"CUSUM k={k:.3g} warm_start={TUNED_WARM_START}",
            "threshold",
            (0.5, 200.0),
            lambda v: CUSUM(k=k, threshold=v, warm_start=TUNED_WARM_START),
            None,
        ),
        Tuned(
            f"PageHinkley delta={delta:.3g}",
            "threshold",
            (1.0, 1e4),
            lambda v: PageHinkley(delta=delta, threshold=v),
            lambda v: rdrift.PageHinkley(delta=delta, threshold=v),
        ),
    ]


def _kl_bern(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def _shifted(generate: StreamGenerator, shift: float) -> StreamGenerator:
    def make(rng: np.random.Generator, n: int) -> F64:
        return generate(rng, n) + shift

    return make


@dataclass(frozen=True)
class Scenario:
    """A change from the stationary ``family`` (a key of GENERATORS) to ``post``."""

    name: str
    family: str
    post: StreamGenerator
    detectors: tuple[str, ...]
    floor: float | None  # ln(1e5) / KL, values (None: not computed)
    shift: float  # the change in the mean, in the stream's units
    sd: float  # the pre-change standard deviation


def scenarios() -> list[Scenario]:
    ln = math.log(1e5)
    bern = [(0.02, 0.04), (0.05, 0.075), (0.10, 0.13)]
    out = [
        Scenario(
            f"Bern {p0:g}->{p1:g}",
            f"bernoulli-{p0:g}",
            bernoulli(p1),
            BERN_DETS,
            ln / _kl_bern(p1, p0),
            p1 - p0,
            math.sqrt(p0 * (1 - p0)),
        )
        for p0, p1 in bern
    ]
    gauss = _shifted(GENERATORS["gaussian"], 0.5)
    out.append(Scenario("Gauss +0.5sd", "gaussian", gauss, NUM_DETS, ln / 0.125, 0.5, 1.0))
    t3 = GENERATORS["student-t3"]  # unit variance
    out.append(Scenario("t3 +0.5sd", "student-t3", _shifted(t3, 0.5), NUM_DETS, None, 0.5, 1.0))
    return out


def change_stream(sc: Scenario, i: int) -> F64:
    """Change stream ``i`` of ``sc``: WARMUP pre-change values, then BUDGET post-change ones."""
    rng = stream_rng(SEED_DELAY, i)
    pre = GENERATORS[sc.family](rng, WARMUP)
    return np.concatenate([pre, sc.post(rng, BUDGET)])


# -- running detectors ------------------------------------------------------------------


def driftd_drifts(det: Detector, x: F64, stop_after: int | None = None) -> list[int]:
    """Drift indices, in chunks of CHUNK; stops after a chunk with a drift at >= stop_after."""
    out: list[int] = []
    for lo in range(0, x.size, CHUNK):
        out += [lo + a.index for a in det.update(x[lo : lo + CHUNK]) if a.kind == "drift"]
        if stop_after is not None and out and out[-1] >= stop_after:
            break
    return out


def river_drifts(det: Any, x: F64, stop_after: int | None = None) -> list[int]:
    """Drift indices, value by value as River's users feed it; stops at a drift >= stop_after."""
    out: list[int] = []
    for i, v in enumerate(x.tolist()):
        det.update(v)
        if det.drift_detected:
            out.append(i)
            if stop_after is not None and i >= stop_after:
                break
    return out


def _upto(alarms: list[int], stop_after: int) -> list[int]:
    """The alarms up to and including the first at >= stop_after (driftd runs by chunks)."""
    out = []
    for a in alarms:
        out.append(a)
        if a >= stop_after:
            break
    return out


@dataclass
class Delays:
    """Per change stream: delay (inf: missed within BUDGET) and alarms before the change."""

    delay: list[float] = field(default_factory=list)
    pre: list[int] = field(default_factory=list)

    def add(self, alarms: list[int]) -> None:
        post = [a for a in alarms if a >= WARMUP]
        self.delay.append(float(post[0] - WARMUP + 1) if post else math.inf)
        self.pre.append(sum(a < WARMUP for a in alarms))

    def summary(self) -> dict[str, Any]:
        d = np.array(self.delay)
        if d.size == 0:
            return {"n": 0}
        med = float(np.quantile(d, 0.5, method="inverted_cdf"))
        return {
            "n": int(d.size),
            "median": med if math.isfinite(med) else None,
            "mean_censored": float(np.minimum(d, BUDGET).mean()),
            "detected": float(np.isfinite(d).mean()),
            "streams_with_pre_change_alarm": int(sum(p > 0 for p in self.pre)),
        }


@dataclass
class Candidate:
    """One detector configuration in one scenario, both sides, with what was checked."""

    scenario: str
    detector: str
    kind: str  # "calibrated" or "default"
    threshold: float | None = None
    feasible: bool = True
    calibration: dict[str, Any] | None = None
    rate: FreshRate | None = None  # driftd (identical for River) on fresh streams
    driftd: Delays = field(default_factory=Delays)  # over N streams
    river: Delays = field(default_factory=Delays)  # River's own, over M streams
    river_rate: dict[str, Any] | None = None  # River's own count on R values
    identical: dict[str, int] = field(default_factory=lambda: {"streams": 0, "same": 0})
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return self.identical["streams"] > 0 and self.identical["same"] == self.identical["streams"]

    @property
    def eligible(self) -> bool:
        return (
            self.feasible
            and self.rate is not None
            and self.rate.rate_per_100k <= (BAND_HIGH * TARGET)
        )


# -- measurement ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    n_streams: int  # change streams per driftd configuration (N)
    n_river: int  # change streams River runs itself (M)
    n_river_slow: int  # ... for River's KSWIN
    river_values: int  # fresh stationary values River runs itself (R)
    check_values: int  # fresh values of driftd's rate check
    cal_samples: int | None  # calibrate()'s n_samples (None: its default)
    slow_samples: int  # calibrate()'s n_samples and the check for KSWIN
    slow_streams: int  # change streams for driftd's KSWIN
    scenarios: tuple[str, ...] | None = None
    detectors: tuple[str, ...] | None = None
    tuned: bool = True  # also the detectors set for the shift (D1 "tuned", D5)


def plan(quick: bool) -> Plan:
    if quick:
        return Plan(20, 5, 1, 100_000, 300_000, 300_000, 200_000, 10, None, BERN_DETS[:3])
    return Plan(400, 60, 1, 400_000, 5_000_000, None, 500_000, 50)


def _river_fresh(make: Callable[[], Any], same: Callable[[], Detector], fam: str, n: int) -> Any:
    """River's drifts on ``n`` fresh stationary values, and whether driftd's ``same`` matches."""
    count, streams, equal = 0, 0, 0
    for x in fresh_streams(GENERATORS[fam], horizon=HORIZON, n_values=n, seed=SEED_RIVER):
        ours = river_drifts(make(), x)
        count += len(ours)
        streams += 1
        equal += ours == driftd_drifts(same(), x)
    low, high = poisson_interval(count, n, 0.95)
    rate = {"false_alarms": count, "n_values": n, "rate_per_100k": count * 1e5 / n}
    return rate | {"interval": [low, high], "streams": streams, "same": equal}


def measure(
    sc: Scenario,
    name: str,
    kind: str,
    p: Plan,
    make: Callable[[], Detector],
    river_make: Callable[[], Any] | None,
) -> Candidate:
    """Delays of ``make`` over N change streams; River's own runs and identity checks."""
    c = Candidate(sc.name, name, kind)
    slow = name in SLOW
    t0 = time.perf_counter()
    check_n = p.slow_samples if slow else p.check_values
    c.rate = fresh_rate(make, GENERATORS[sc.family], horizon=HORIZON, n_values=check_n,
                        seed=SEED_CHECK)  # fmt: skip
    t1 = time.perf_counter()
    n = p.slow_streams if slow else p.n_streams
    alarms = [driftd_drifts(make(), change_stream(sc, i), WARMUP) for i in range(n)]
    for a in alarms:
        c.driftd.add(a)
    t2 = time.perf_counter()
    c.seconds = {"rate_check": round(t1 - t0, 2), "delays": round(t2 - t1, 2)}
    if river_make is None:
        return c
    m = min(n, p.n_river_slow if slow else p.n_river)
    for i in range(m):
        theirs = river_drifts(river_make(), change_stream(sc, i), WARMUP)
        c.river.add(theirs)
        c.identical["streams"] += 1
        c.identical["same"] += theirs == _upto(alarms[i], WARMUP)
    if not slow:
        r = _river_fresh(river_make, make, sc.family, p.river_values)
        c.river_rate = r
        c.identical["streams"] += r["streams"]
        c.identical["same"] += r["same"]
    c.seconds["river"] = round(time.perf_counter() - t2, 2)
    return c


def calibrated(sc: Scenario, name: str, p: Plan, tune: Tuned | None = None) -> Candidate:
    """calibrate() at TARGET on a reference from the pre-change family, then measure.

    ``name`` is a key of THRESHOLDS, or ``tune`` gives the detector and its River twin."""
    ref = GENERATORS[sc.family](np.random.default_rng(SEED_REF), REFERENCE_N)
    n_cal = p.slow_samples if name in SLOW else p.cal_samples
    kind = "calibrated" if tune is None else "tuned"
    build = THRESHOLDS[name].build if tune is None else tune.build
    river_at = RIVER_AT.get(name) if tune is None else tune.river_at
    t0 = time.perf_counter()
    try:
        rtol = 0.05 if name in SLOW else 0.01
        cal = (
            calibrate(name, ref, TARGET, horizon=HORIZON, n_samples=n_cal, seed=SEED_CAL,
                      rtol=rtol)
            if tune is None
            else calibrate(tune.build, ref, TARGET, rate_rises=False, bounds=tune.bounds,
                           horizon=HORIZON, n_samples=n_cal, seed=SEED_CAL, rtol=rtol)
        )  # fmt: skip
    except ValueError:  # even the quietest bound alarms more often than the target
        return Candidate(sc.name, name, kind, feasible=False)
    seconds = round(time.perf_counter() - t0, 2)
    value = cal.threshold
    river_make = (lambda: river_at(value)) if river_at is not None else None
    c = measure(sc, name, kind, p, lambda: build(value), river_make)
    c.threshold = value
    c.calibration = {
        "parameter": cal.parameter or "threshold",
        "threshold": value,
        "false_alarms": cal.false_alarms,
        "n_values": cal.n_values,
        "rate_per_100k": cal.rate_per_100k,
        "interval": list(cal.interval),
        "dispersion": cal.dispersion,
    }
    c.seconds["calibrate"] = seconds
    return c


def run(p: Plan, verbose: bool) -> list[Candidate]:
    out: list[Candidate] = []
    for sc in scenarios():
        if p.scenarios is not None and sc.name not in p.scenarios:
            continue
        names = [d for d in sc.detectors if p.detectors is None or d in p.detectors]
        for name in names:
            t0 = time.perf_counter()
            out.append(calibrated(sc, name, p))
            if verbose:
                print(f"  {sc.name} calibrated {name}: {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr)  # fmt: skip
        for tune in tuned(sc) if p.tuned else []:
            t0 = time.perf_counter()
            out.append(calibrated(sc, tune.name, p, tune))
            if verbose:
                print(f"  {sc.name} tuned {tune.name}: {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr)  # fmt: skip
        for name in names:
            if name not in RIVER_DEFAULT:
                continue
            t0 = time.perf_counter()
            out.append(measure(sc, name, "default", p, DRIFTD_DEFAULT[name], RIVER_DEFAULT[name]))
            if verbose:
                print(f"  {sc.name} default {name}: {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr)  # fmt: skip
    return out


# -- rows ---------------------------------------------------------------------------------


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _rate(r: FreshRate) -> str:
    low, high = r.interval
    return (
        f"FA {r.rate_per_100k:.3g}/100k [{low:.2g}, {high:.2g}] "
        f"({r.false_alarms} in {r.n_values / 1e6:g}M fresh)"
    )


def _river_note(c: Candidate) -> str:
    if c.identical["streams"] == 0:
        return "River: none (no CUSUM)"
    s = c.river.summary()
    same = f"{c.identical['same']}/{c.identical['streams']} streams alarm-identical"
    note = f"River's own: median {_num(s.get('median'))} on {s['n']} change streams"
    if c.river_rate is not None:
        r = c.river_rate
        note += f", {r['false_alarms']} FA in {r['n_values'] / 1e6:g}M fresh"
    return f"{note}; {same}" + ("" if c.matches else " MISMATCH")


def _delay_note(s: dict[str, Any]) -> str:
    return (
        f"detected {s['detected']:.0%} of {s['n']} within {BUDGET // 1000}k; "
        f"mean (censored) {_num(s['mean_censored'])}; "
        f"pre-change alarm in {s['streams_with_pre_change_alarm']}"
    )


def _river_delays(c: Candidate) -> Delays:
    """River's delays: driftd's identical detector's over N streams, else River's own runs."""
    return c.driftd if c.matches else c.river


def rows_from(cands: list[Candidate]) -> list[Row]:
    rows: list[Row] = []
    for c in cands:
        if c.kind not in ("calibrated", "tuned"):
            continue
        parameter = THRESHOLDS[c.detector].parameter if c.kind == "calibrated" else "threshold"
        label = f"D1 {c.scenario} {c.detector} calibrated"
        if c.kind == "tuned":
            label += " (set for the shift)"
        if not c.feasible:
            rows.append(
                Row(label, None, "values",
                    note=f"infeasible: quietest {parameter} exceeds {TARGET:g}/100k")
            )  # fmt: skip
            continue
        assert c.rate is not None
        s = c.driftd.summary()
        flag = "" if c.eligible else f" (above {BAND_HIGH:g}x: not competing)"
        rows.append(
            Row(
                label,
                s["median"],
                "values",
                note=f"{parameter}={c.threshold:.4g}; {_rate(c.rate)}{flag}; "
                f"{_delay_note(s)}; {_river_note(c)}",
            )
        )
    for c in cands:
        if c.kind != "default":
            continue
        assert c.rate is not None
        s = _river_delays(c).summary()
        rows.append(
            Row(
                f"D2 {c.scenario} River default {c.detector}",
                s["median"],
                "values",
                note=f"{_rate(c.rate)}; {_delay_note(s)}; {_river_note(c)}",
            )
        )
    names = list(dict.fromkeys(c.scenario for c in cands))
    by = {name: [c for c in cands if c.scenario == name] for name in names}
    rows += [_best_row(name, by[name], ("calibrated",), "D3") for name in names]
    rows += [_default_row(name, by[name]) for name in names]
    if any(c.kind == "tuned" for c in cands):
        rows += [_best_row(name, by[name], ("calibrated", "tuned"), "D5") for name in names]
    return rows


def _default_row(name: str, cands: list[Candidate]) -> Row:
    """driftd's best calibrated detector vs River's best default within the same rate budget."""
    cal = [c for c in cands if c.kind == "calibrated" and c.eligible]
    ours = min(cal, key=lambda c: _key(c.driftd), default=None)
    dflt = [c for c in cands if c.kind == "default"]
    within = [c for c in dflt if c.eligible]
    theirs = min(within, key=lambda c: _key(_river_delays(c)), default=None)
    label = f"D4 {name} calibrate() vs River defaults within {BAND_HIGH * TARGET:g}/100k"
    if ours is None:
        return Row(label, None, "values", note="no calibrated candidate")
    fastest = min(dflt, key=lambda c: _key(_river_delays(c)), default=None)
    note = ""
    if fastest is not None and fastest is not theirs and fastest.rate is not None:
        f = _river_delays(fastest).summary()
        note = (
            f"; River's fastest default: {fastest.detector} median {_num(f['median'])} at "
            f"FA {fastest.rate.rate_per_100k:.3g}/100k"
        )
    mine = ours.driftd.summary()
    assert ours.rate is not None
    head = f"driftd {ours.detector} calibrated (FA {ours.rate.rate_per_100k:.2g}/100k)"
    if theirs is None:
        return Row(label, mine["median"], "values",
                   note=f"{head}; no River default within the budget{note}")  # fmt: skip
    other = _river_delays(theirs).summary()
    assert theirs.rate is not None
    ratio = other["median"] / mine["median"] if mine["median"] and other["median"] else None
    return Row(
        label,
        mine["median"],
        "values",
        baseline=other["median"],
        ratio=ratio,
        target={"op": ">=", "value": 1.0, "of": "ratio"},
        note=f"{head} vs River default {theirs.detector} (FA "
        f"{theirs.rate.rate_per_100k:.2g}/100k, mean {_num(other['mean_censored'])}, detected "
        f"{other['detected']:.0%}){note}; ratio = River / driftd",
    )


def _key(d: Delays) -> tuple[float, float]:
    s = d.summary()
    med = s["median"] if s["median"] is not None else math.inf
    return med, s["mean_censored"]


def _best_row(name: str, cands: list[Candidate], kinds: tuple[str, ...], tag: str) -> Row:
    """driftd's best calibrated detector vs River's best at the same rate, in one scenario
    (of the candidates of ``kinds``: "tuned" adds those set for the shift)."""
    cal = [c for c in cands if c.kind in kinds and c.eligible]
    label = f"{tag} {name} best at {TARGET:g}/100k"
    if "tuned" in kinds:
        label += ", set for the shift too"
    ours = min(cal, key=lambda c: _key(c.driftd), default=None)
    theirs_all = [c for c in cal if c.identical["streams"] > 0]
    theirs = min(theirs_all, key=lambda c: _key(_river_delays(c)), default=None)
    sc = next(s for s in scenarios() if s.name == name)
    floor = f"ln(1e5)/KL {_num(sc.floor)} (asymptotic reference); " if sc.floor else ""
    if ours is None or theirs is None:
        return Row(label, None, "values", note="no candidate")
    mine, other = ours.driftd.summary(), _river_delays(theirs).summary()
    ratio = None
    if mine["median"] and other["median"]:
        ratio = other["median"] / mine["median"]
    same = ours.detector == theirs.detector
    why = (
        "same detector on both sides (identical alarms): a tie by construction"
        if same
        else f"driftd's {ours.detector} has no River counterpart"
        if ours.identical["streams"] == 0
        else "River's delays from its own runs (alarms not identical)"
    )
    assert ours.rate is not None and theirs.rate is not None
    return Row(
        label,
        mine["median"],
        "values",
        baseline=other["median"],
        ratio=ratio,  # no target: where the best is a detector both have, 1.0 by construction
        note=f"{floor}driftd {ours.detector} (FA {ours.rate.rate_per_100k:.2g}/100k, mean "
        f"{_num(mine['mean_censored'])}, detected {mine['detected']:.0%}) vs River "
        f"{theirs.detector} (FA {theirs.rate.rate_per_100k:.2g}/100k, mean "
        f"{_num(other['mean_censored'])}, detected {other['detected']:.0%}); {why}; "
        "ratio = River / driftd",
    )


# -- output -------------------------------------------------------------------------------


def _json(c: Candidate) -> dict[str, Any]:
    r = c.rate
    return {
        "scenario": c.scenario,
        "detector": c.detector,
        "kind": c.kind,
        "threshold": c.threshold,
        "feasible": c.feasible,
        "eligible": c.eligible,
        "calibration": c.calibration,
        "rate": None
        if r is None
        else {
            "false_alarms": r.false_alarms,
            "n_values": r.n_values,
            "n_streams": r.n_streams,
            "rate_per_100k": r.rate_per_100k,
            "interval": list(r.interval),
            "dispersion": r.dispersion,
        },
        "driftd": c.driftd.summary(),
        "river": c.river.summary(),
        "river_rate": c.river_rate,
        "identical": c.identical,
        "seconds": c.seconds,
    }


def delay_rows(quick: bool) -> list[Row]:
    """Every D row (for ``benchmarks/detectors.py``)."""
    return rows_from(run(plan(quick), False))


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run for smoke tests")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    ap.add_argument("--scenarios", type=_names, help='only these, e.g. "Gauss +0.5sd"')
    ap.add_argument("--detectors", type=_names, help="only these detectors, e.g. CUSUM,HDDM_A")
    ap.add_argument("--no-tuned", action="store_true", help="skip the detectors set for the shift")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = ap.parse_args(argv)
    p = plan(args.quick)
    p = Plan(**{**p.__dict__, "scenarios": args.scenarios or p.scenarios,
                "detectors": args.detectors or p.detectors,
                "tuned": p.tuned and not args.no_tuned})  # fmt: skip
    machine = machine_info(river=getattr(river, "__version__", None))
    t0 = time.perf_counter()
    cands = run(p, args.verbose)
    rows = [r.judge() for r in rows_from(cands)]
    params = {
        "quick": args.quick,
        "target_per_100k": TARGET,
        "band_high": BAND_HIGH,
        "horizon": HORIZON,
        "warmup": WARMUP,
        "budget": BUDGET,
        "reference_n": REFERENCE_N,
        "plan": p.__dict__,
        "seeds": {"reference": SEED_REF, "calibrate": SEED_CAL, "check": SEED_CHECK,
                  "river_fresh": SEED_RIVER, "change_streams": SEED_DELAY},
        "total_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    machine["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    title = f"driftd vs River: detection delay at {TARGET:g} FA/100k fresh-stream rate"
    print_rows(rows, f"{title} ({'quick' if args.quick else 'full'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine,
        "rows": [r.as_json() for r in rows],
        "candidates": [_json(c) for c in cands],
        "params": params,
    }
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {params['total_s']} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
