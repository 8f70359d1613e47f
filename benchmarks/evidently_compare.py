"""Window drift side by side: driftd WindowDrift, scipy per-column KS and Evidently.

The issue's window benchmark measured in one run on the same data: reference 50,000 x 20 vs
current 50,000 x 20 with f0 +0.5 sd, f1 x1.5 scale, f2 +0.1 sd; wall time per call, features
flagged, P(any false positive among the 17 unshifted features) with no shift, and the flag
rate for a negligible +0.03 sd shift. Evidently is slow (seconds per call), so it gets fewer
seeds than the others; every row says how many.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: Evidently and the pandas it works
with). ``make bench`` installs it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from driftd.detectors import WindowDrift

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "evidently_compare.json"
N, D = 50_000, 20


def data(seed: int, shift: str) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current windows; ``shift`` is "issue", "none" or "tiny" (+0.03 sd on f0)."""
    rng = np.random.default_rng(seed)
    ref, cur = rng.standard_normal((N, D)), rng.standard_normal((N, D))
    if shift == "issue":
        cur[:, 0] += 0.5
        cur[:, 1] *= 1.5
        cur[:, 2] += 0.1
    elif shift == "tiny":
        cur[:, 0] += 0.03
    return ref, cur


def driftd_flags(ref: np.ndarray, cur: np.ndarray) -> set[int]:
    report = WindowDrift(ref).test(cur)
    return {i for i, f in enumerate(report.features) if f.drift}


def scipy_flags(ref: np.ndarray, cur: np.ndarray, bonferroni: bool) -> set[int]:
    alpha = 0.05 / D if bonferroni else 0.05
    return {i for i in range(D) if stats.ks_2samp(ref[:, i], cur[:, i]).pvalue < alpha}


def evidently_flags(ref: np.ndarray, cur: np.ndarray) -> set[int]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    cols = [f"f{i}" for i in range(D)]
    res = Report([DataDriftPreset()]).run(
        reference_data=pd.DataFrame(ref, columns=cols), current_data=pd.DataFrame(cur, columns=cols)
    )
    flagged = set()
    for m in res.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift") and float(m["value"]) >= cfg["threshold"]:
            flagged.add(int(cfg["column"][1:]))
    return flagged


def measure(name: str, fn: Any, seeds: int) -> dict[str, Any]:
    """Time one call on the shifted data; detection, FP and tiny-shift rates over seeds."""
    ref, cur = data(0, "issue")
    t0 = time.perf_counter()
    fn(ref, cur)
    seconds = time.perf_counter() - t0
    found = np.zeros(3)
    any_fp = tiny = 0
    for seed in range(seeds):
        flags = fn(*data(seed, "issue"))
        found += [i in flags for i in range(3)]
        any_fp += bool(fn(*data(1000 + seed, "none")) - {0, 1, 2})
        tiny += 0 in fn(*data(2000 + seed, "tiny"))
    return {
        "method": name,
        "seconds_per_call": seconds,
        "seeds": seeds,
        "found_f0_f1_f2": (found / seeds).tolist(),
        "p_any_false_positive": any_fp / seeds,
        "tiny_shift_flag_rate": tiny / seeds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds for driftd and scipy")
    ap.add_argument("--evidently-seeds", type=int, default=5, help="seeds for Evidently")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    rows = [
        measure("driftd WindowDrift (auto)", driftd_flags, args.seeds),
        measure(
            "scipy ks_2samp, p<.05 per feature", lambda r, c: scipy_flags(r, c, False), args.seeds
        ),
        measure("scipy ks_2samp, Bonferroni", lambda r, c: scipy_flags(r, c, True), args.seeds),
    ]
    try:
        rows.append(measure("Evidently DataDriftPreset", evidently_flags, args.evidently_seeds))
    except ImportError as exc:
        rows.append({"method": "Evidently DataDriftPreset", "skipped": f"not installed: {exc}"})
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"window drift, {N:,} x {D} vs {N:,} x {D}", title_justify="left")
    for col in ("method", "s/call", "found f0/f1/f2", "P(any FP)", "+0.03 sd flagged", "seeds"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        if "skipped" in r:
            t.add_row(r["method"], "-", "-", "-", "-", r["skipped"])
            continue
        t.add_row(
            r["method"],
            f"{r['seconds_per_call']:.3f}",
            "/".join(f"{x:.2f}" for x in r["found_f0_f1_f2"]),
            f"{r['p_any_false_positive']:.2f}",
            f"{r['tiny_shift_flag_rate']:.2f}",
            str(r["seeds"]),
        )
    Console().print(t)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "n": N, "d": D}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
