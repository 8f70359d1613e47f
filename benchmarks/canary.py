"""Canary analysis benchmark: driftd's sequential rule vs Flagger- and Argo-style rules.

Run ``python benchmarks/canary.py`` (``--quick`` for a smoke run). Traffic is simulated here
(fixed seeds): 100 requests/s (Poisson), a fixed share to the canary (``--weights``: 10% and
50% by default, each the same for every rule), champion errors 0.5%, lognormal latency
(median 150 ms, p99 420 ms), a classifier at 92% accuracy with 30% of requests labelled 60 s
later. Every rule reads exactly
the same per-second evidence; rules decide through ``driftd.rollout`` (pure verdicts).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from driftd.rollout.evidence import SLO, ArmCounts, Batch, Decision, Evidence
from driftd.rollout.rules import ArgoRule, FlaggerRule, Rule, SequentialRule

try:
    from benchmarks.report import Row, machine_info, print_rows
except ImportError:  # run as a script: python benchmarks/canary.py
    from report import Row, machine_info, print_rows  # type: ignore[no-redef]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "canary.json"
RATE = 100.0  # requests per second, both arms together
P_ERR = 0.005  # champion error rate
MEDIAN_MS, P99_MS = 150.0, 420.0  # champion latency: lognormal
SIGMA = math.log(P99_MS / MEDIAN_MS) / norm.ppf(0.99)
CEILING_MS = 500.0  # Flagger/Argo p99 ceiling
LAT_MARGIN = 0.10  # driftd: canary p99 no worse than champion's by more than 10%
ACC = 0.92
LABEL_FRAC, LABEL_DELAY = 0.3, 60
T_MAX = 1_800  # seconds simulated = driftd's max duration

SLO_DRIFTD = SLO(
    alpha=0.05,
    error_margin=0.0,
    error_ni=0.005,
    latency_margin=LAT_MARGIN,
    quality_margin=0.0,
    quality_ni=0.02,
    drift_alpha=None,  # inputs are identical in this simulation
    max_duration_s=T_MAX,
)


@dataclass(frozen=True)
class Scenario:
    """What the canary does differently: error rate, latency scale, accuracy."""

    name: str
    p_err: float = P_ERR
    lat_scale: float = 1.0
    acc: float = ACC


SCENARIOS = [
    Scenario("null (canary = champion)"),
    Scenario("errors 0.5% -> 2%", p_err=0.02),
    Scenario("errors 0.5% -> 1%", p_err=0.01),
    Scenario("p99 latency +30%", lat_scale=1.3),
    Scenario("accuracy 92% -> 87%", acc=0.87),
]


def _over(threshold_ms: float, scale: float) -> float:
    """P(latency > threshold) for the champion's lognormal scaled by ``scale``."""
    return float(norm.sf(math.log(threshold_ms / (MEDIAN_MS * scale)) / SIGMA))


def simulate(sc: Scenario, seeds: int, t_max: int, weight: float, seed0: int) -> np.ndarray:
    """Per-second counts, shape (seeds, t_max, 2 arms, 6): requests, errors, slow,
    over_ceiling, labeled, correct. Arm 0 is the canary. Vectorised binomial draws."""
    rng = np.random.default_rng(seed0)
    n = rng.poisson(RATE, (seeds, t_max))
    nc = rng.binomial(n, weight)
    req = np.stack([nc, n - nc], axis=2)
    p_err = np.array([sc.p_err, P_ERR])
    slow_p = np.array([_over(P99_MS * (1 + LAT_MARGIN), sc.lat_scale), 0.01])
    over_p = np.array([_over(CEILING_MS, sc.lat_scale), _over(CEILING_MS, 1.0)])
    acc = np.array([sc.acc, ACC])
    lab = np.zeros_like(req)
    lab[:, LABEL_DELAY:] = rng.binomial(req[:, :-LABEL_DELAY], LABEL_FRAC)
    out = np.stack(
        [
            req,
            rng.binomial(req, p_err),
            rng.binomial(req, slow_p),
            rng.binomial(req, over_p),
            lab,
            rng.binomial(lab, acc),
        ],
        axis=3,
    )
    return out


def run_seed(counts: np.ndarray, rules: list[Rule], slo: SLO, every: list[int]) -> list[Any]:
    """(decision, time) per rule on one seed's traffic; a rule is asked every ``every[i]``
    seconds (interval rules can only change their verdict at their ticks) until it decides."""
    ev = Evidence()
    out: list[Any] = [(Decision.CONTINUE, math.inf)] * len(rules)
    live = set(range(len(rules)))
    rows = counts.tolist()
    for t, (c, b) in enumerate(rows, start=1):
        ev = ev.add(Batch(float(t), ArmCounts(*c), ArmCounts(*b)))
        for i in list(live):
            if t % every[i]:
                continue
            v = rules[i].verdict(ev, slo)
            if v.decision is not Decision.CONTINUE:
                out[i] = (v.decision, v.elapsed_s)
                live.discard(i)
        if not live:
            break
    return out


def _q(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q, method="inverted_cdf"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run for smoke tests")
    ap.add_argument("--seeds", type=int, help="seeds per scenario (default 200; quick 30)")
    ap.add_argument(
        "--weights", default="0.1,0.5", help="canary traffic shares to run, comma separated"
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = ap.parse_args(argv)
    args.seeds = args.seeds or (30 if args.quick else 200)
    args.weights = [float(w) for w in args.weights.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    acc_min = 0.88  # Flagger/Argo custom accuracy check: champion - 4 points (~2 sd per minute)
    rules: list[Rule] = [
        SequentialRule(),
        FlaggerRule(interval_s=60, threshold=5, min_success=0.99, min_accuracy=acc_min),
        ArgoRule(interval_s=60, failure_limit=0, min_accuracy=acc_min),
        ArgoRule(interval_s=60, failure_limit=3, min_accuracy=acc_min),
    ]
    every = [1, 60, 60, 60]
    names = [r.name for r in rules]
    res_all: dict[str, dict[str, dict[str, Any]]] = {}
    rows: list[Row] = []
    for w in args.weights:
        res = run_weight(args, w, rules, every, names, t0)
        res_all[f"{w:g}"] = res
        print_comparison(res, names, w)
        rows += build_rows(res, names, SLO_DRIFTD.alpha, f"w={w:.0%} ")
    for r in rows:
        r.judge()
    print_rows(rows, f"driftd canary benchmark ({'quick' if args.quick else 'full'})")
    total = round(time.perf_counter() - t0, 1)
    doc = {
        "machine": machine_info(loadavg_at_end=os.getloadavg()),
        "rows": [r.as_json() for r in rows],
        "results": res_all,
        "params": {
            "quick": args.quick,
            "seeds": args.seeds,
            "weights": args.weights,
            "rate_rps": RATE,
            "t_max_s": T_MAX,
            "latency": {"median_ms": MEDIAN_MS, "p99_ms": P99_MS, "ceiling_ms": CEILING_MS},
            "labels": {"fraction": LABEL_FRAC, "delay_s": LABEL_DELAY},
            "rules": [repr(r) for r in rules],
            "slo": repr(SLO_DRIFTD),
            "total_s": total,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {total} s in all")
    return 0


def run_weight(
    args: argparse.Namespace,
    w: float,
    rules: list[Rule],
    every: list[int],
    names: list[str],
    t0: float,
) -> dict[str, dict[str, Any]]:
    """Every scenario at canary share ``w``: the same traffic for every rule, per seed."""
    res: dict[str, dict[str, Any]] = {}
    for si, sc in enumerate(SCENARIOS):
        counts = simulate(sc, args.seeds, T_MAX, w, seed0=1_000 + si)
        per = [run_seed(counts[s], rules, SLO_DRIFTD, every) for s in range(args.seeds)]
        res[sc.name] = {}
        for i, name in enumerate(names):
            dec = [p[i][0] for p in per]
            t_rb = np.array([p[i][1] if p[i][0] is Decision.ROLLBACK else math.inf for p in per])
            t_pr = np.array([p[i][1] if p[i][0] is Decision.PROMOTE else math.inf for p in per])
            res[sc.name][name] = {
                "rollback_rate": float(np.mean(np.isfinite(t_rb))),
                "promote_rate": float(np.mean(np.isfinite(t_pr))),
                "halt_rate": float(np.mean([d is Decision.HALT for d in dec])),
                "ttr_median_s": _q(t_rb, 0.5),
                "ttr_p90_s": _q(t_rb, 0.9),
                "promote_median_s": _q(t_pr, 0.5),
            }
        print(f"w={w:g} {sc.name}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return res


def build_rows(
    res: dict[str, dict[str, Any]], names: list[str], alpha: float, pre: str
) -> list[Row]:
    """Target rows: driftd's median vs Flagger's (ratio <= 0.2), detection, false rollbacks."""
    rows: list[Row] = []
    d, fl = names[0], names[1]
    for sc in SCENARIOS[1:]:
        r = res[sc.name]
        med, base = r[d]["ttr_median_s"], r[fl]["ttr_median_s"]
        ratio = med / base if math.isfinite(base) else 0.0
        note = "flagger never rolls back (ratio 0)" if not math.isfinite(base) else "vs flagger"
        if sc.acc != ACC:
            note += f"; labels join at {LABEL_DELAY} s"
        rows.append(
            Row(
                f"{pre}{sc.name}: time-to-rollback median",
                med,
                "s",
                baseline=base if math.isfinite(base) else None,
                ratio=ratio,
                target={"op": "<=", "value": 0.2, "of": "ratio"},
                note=note,
            )
        )
        rows.append(Row(f"{pre}{sc.name}: time-to-rollback p90", r[d]["ttr_p90_s"], "s"))
        rows.append(
            Row(
                f"{pre}{sc.name}: detection probability",
                r[d]["rollback_rate"],
                "",
                target={"op": ">=", "value": 0.95, "of": "value"},
            )
        )
    null = res[SCENARIOS[0].name]
    for name in names:
        tgt = {"op": "<=", "value": alpha, "of": "value"} if name == d else None
        fr = null[name]["rollback_rate"]
        rows.append(Row(f"{pre}false rollbacks: {name}", fr, "", target=tgt))
    rows.append(Row(f"{pre}good canary: driftd promotes, median", null[d]["promote_median_s"], "s"))
    rows.append(Row(f"{pre}good canary: driftd promote rate", null[d]["promote_rate"], ""))
    return rows


def print_comparison(res: dict[str, dict[str, Any]], names: list[str], w: float) -> None:
    """Side by side: every scenario x rule."""
    from rich.console import Console
    from rich.table import Table

    title = f"canary share {w:.0%}: rules on the same traffic (s; inf = never rolled back)"
    table = Table(title=title)
    for col in ("scenario", "rule", "rollback", "ttr median", "ttr p90", "promote", "halt"):
        table.add_column(col, justify="left" if col in ("scenario", "rule") else "right")
    for sc in SCENARIOS:
        for name in names:
            x = res[sc.name][name]
            table.add_row(
                sc.name,
                name,
                f"{x['rollback_rate']:.3f}",
                f"{x['ttr_median_s']:.0f}",
                f"{x['ttr_p90_s']:.0f}",
                f"{x['promote_rate']:.3f}",
                f"{x['halt_rate']:.3f}",
            )
    Console(width=160).print(table)


if __name__ == "__main__":
    sys.exit(main())
