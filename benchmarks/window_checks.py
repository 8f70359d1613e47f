"""The daemon's window checks: P(any false alarm per window) and power, numeric and categorical.

Each trial draws a fresh reference (4,000 rows) and a fresh window (2,000 rows) of 6 numeric
and 4 categorical features and runs ``driftd.daemon.check_stats.evaluate`` as the leader does
for a closing window. Stationary trials measure P(any false alarm) against ``alpha`` = 0.05;
shifted trials (one numeric feature +0.15 sd, one categorical category's share +3 points)
measure power. The baseline is what a user of scipy writes without a correction: one
``ks_2samp`` / ``chi2_contingency`` per feature at p < 0.05. Missing, out-of-range and unseen
checks get the same stationary treatment and a fault each (2 % missing, 2 % far out of range,
1 % of a new category).

Run: ``python benchmarks/window_checks.py [--quick]``; writes
``benchmarks/results/window_checks.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

from driftd.config import WindowCheckSettings
from driftd.daemon.check_stats import evaluate

try:
    from benchmarks.report import Row, report
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import Row, report  # type: ignore[no-redef]

NUM, CAT = 6, 4
NAMES = [f"x{j}" for j in range(NUM)] + [f"c{j}" for j in range(CAT)]
CATEGORICAL = [False] * NUM + [True] * CAT
P_CAT = np.array([0.4, 0.3, 0.2, 0.1])
ALPHA = 0.05
Fault = Callable[[np.ndarray, np.random.Generator], None]


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    num = rng.normal(size=(n, NUM))
    cat = rng.choice(np.arange(1.0, 5.0), size=(n, CAT), p=P_CAT)
    return np.column_stack([num, cat])


def _shift(x: np.ndarray, rng: np.random.Generator) -> None:
    x[:, 0] += 0.15
    flip = rng.random(len(x)) < 0.03  # three more points of category 4 in c0
    x[flip, NUM] = 4.0


def _scipy_any(ref: np.ndarray, cur: np.ndarray) -> bool:
    """Per-feature scipy tests at p < 0.05, no correction: what most hand-written code does."""
    for j in range(NUM):
        if stats.ks_2samp(ref[:, j], cur[:, j]).pvalue < ALPHA:
            return True
    for j in range(NUM, NUM + CAT):
        cats = np.union1d(ref[:, j], cur[:, j])
        table = [[(ref[:, j] == c).sum() for c in cats], [(cur[:, j] == c).sum() for c in cats]]
        if stats.chi2_contingency(table).pvalue < ALPHA:
            return True
    return False


def _trials(
    check: WindowCheckSettings, trials: int, seed: int, fault: Fault | None, scipy: bool
) -> tuple[float, float | None]:
    rng = np.random.default_rng(seed)
    hits = base = 0
    for _ in range(trials):
        ref, cur = _rows(rng, 4_000), _rows(rng, 2_000)
        if check.check == "missing":
            ref[rng.random(ref.shape) < 0.01] = np.nan
            cur[rng.random(cur.shape) < 0.01] = np.nan
        if fault is not None:
            fault(cur, rng)
        hits += any(o.drift for o in evaluate(check, NAMES, CATEGORICAL, ref, cur))
        if scipy:
            base += _scipy_any(ref, cur)
    return hits / trials, (base / trials if scipy else None)


def _missing(x: np.ndarray, rng: np.random.Generator) -> None:
    x[rng.random(len(x)) < 0.02, 1] = np.nan


def _out_of_range(x: np.ndarray, rng: np.random.Generator) -> None:
    x[rng.random(len(x)) < 0.02, 2] = 8.0


def _unseen(x: np.ndarray, rng: np.random.Generator) -> None:
    x[rng.random(len(x)) < 0.01, NUM + 1] = 9.0


def check_rows(quick: bool) -> list[Row]:
    """P(any false alarm) and power of each window check, with scipy's for drift."""
    trials = 60 if quick else 400
    rows: list[Row] = []
    drift = WindowCheckSettings(check="drift", alpha=ALPHA)
    fp, fp_scipy = _trials(drift, trials, 1, None, scipy=True)
    power, power_scipy = _trials(drift, trials, 2, _shift, scipy=True)
    rows.append(
        Row(
            "window drift (KS + chi2, Holm), no shift: P(any false alarm)",
            fp,
            "P(any FP)",
            baseline=fp_scipy,
            target={"op": "<=", "value": ALPHA, "of": "value"},
            note=f"{trials} fresh windows, 6 numeric + 4 categorical; baseline scipy p<.05 each",
        ).judge()
    )
    rows.append(
        Row(
            "window drift: power, +0.15 sd numeric and +3 pts categorical",
            power,
            "P(alarm)",
            baseline=power_scipy,
            target={"op": ">=", "value": 0.9, "of": "value"},
            note="the baseline's power comes with its false alarms above",
        ).judge()
    )
    for kind, fault, what in (
        ("missing", _missing, "2 % of one feature missing (1 % in the reference)"),
        ("out_of_range", _out_of_range, "2 % of one feature at 8 sd"),
        ("unseen", _unseen, "1 % of one feature a new category"),
    ):
        check = WindowCheckSettings(check=kind, alpha=ALPHA)  # type: ignore[arg-type]
        fp, _ = _trials(check, trials, 3, None, scipy=False)
        power, _ = _trials(check, max(trials // 4, 20), 4, fault, scipy=False)
        rows.append(
            Row(
                f"window {kind}, stationary: P(any false alarm)",
                fp,
                "P(any FP)",
                target={"op": "<=", "value": ALPHA, "of": "value"},
                note=f"{trials} fresh windows of 2,000 rows, 10 features",
            ).judge()
        )
        rows.append(
            Row(
                f"window {kind}: power, {what}",
                power,
                "P(alarm)",
                target={"op": ">=", "value": 0.9, "of": "value"},
            ).judge()
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="60 trials a row (a smoke run: too few to judge 5 %%)"
    )
    ap.add_argument("--out", default="benchmarks/results/window_checks.json")
    args = ap.parse_args(argv)
    rows = check_rows(args.quick)
    return report(rows, "daemon window checks: false alarms per window and power", args.out)


if __name__ == "__main__":
    raise SystemExit(main())
