"""Per-value throughput: every driftd streaming detector fed one Python float at a time, next
to the matching River detector on the same values (CUSUM next to River's PageHinkley: River
has no CUSUM).

Run ``python benchmarks/detectors_scalar.py`` (``--quick`` for a smoke run). Both sides are
timed in the same process, alternating, best of ``repeats``; the machine is shared and noisy,
so compare the ratios. The target is driftd >= River (ratio >= 1.0x).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import river
from river import drift as rdrift
from river.drift import binary as rbinary

from driftd.detectors import ADWIN, CUSUM, DDM, EDDM, HDDM_A, HDDM_W, KSWIN, PageHinkley

try:
    from benchmarks import report
    from benchmarks.report import Row, print_rows
except ImportError:  # run as a script: python benchmarks/detectors_scalar.py
    import report  # type: ignore[no-redef,import-not-found]
    from report import Row, print_rows  # type: ignore[no-redef]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "detectors_scalar.json"

# name, driftd factory, River factory, stream family, values (full run; KSWIN's River is slow)
PAIRS: list[tuple[str, Callable[[], Any], Callable[[], Any], str, int]] = [
    ("ADWIN", ADWIN, rdrift.ADWIN, "gauss", 200_000),
    ("PageHinkley", PageHinkley, rdrift.PageHinkley, "gauss", 200_000),
    ("CUSUM (River: PageHinkley)", CUSUM, rdrift.PageHinkley, "gauss", 200_000),
    ("DDM", DDM, rbinary.DDM, "bern", 200_000),
    ("EDDM", EDDM, rbinary.EDDM, "bern", 200_000),
    ("HDDM_A (River: HDDMA)", HDDM_A, rbinary.HDDMA, "bern", 200_000),
    ("HDDM_W (River: HDDMW)", HDDM_W, rbinary.HDDMW, "bern", 200_000),
    ("KSWIN", KSWIN, lambda: rdrift.KSWIN(seed=0), "gauss", 3_000),
]


def _values(family: str, n: int) -> list[float]:
    """Python floats: Bernoulli(0.1) errors or N(0, 1), fixed seed."""
    rng = np.random.default_rng(0)
    x = (rng.random(n) < 0.1).astype(np.float64) if family == "bern" else rng.normal(size=n)
    return [float(v) for v in x]


def _rate(make: Callable[[], Any], xs: list[float]) -> float:
    """Values per second through ``update(v)``, one float per call, on a fresh detector."""
    det = make()
    t0 = time.perf_counter()
    for v in xs:
        det.update(v)
    return len(xs) / (time.perf_counter() - t0)


def scalar_rows(quick: bool, repeats: int | None = None) -> list[Row]:
    """One row per detector: driftd's values/s (value), River's (baseline), ratio, target."""
    repeats = repeats or (2 if quick else 5)
    rows: list[Row] = []
    for name, ours, theirs, family, n in PAIRS:
        xs = _values(family, n // 10 if quick else n)
        best_ours, best_river = 0.0, 0.0
        for _ in range(repeats):  # alternate, so load on the machine hits both sides alike
            best_ours = max(best_ours, _rate(ours, xs))
            best_river = max(best_river, _rate(theirs, xs))
        rows.append(
            Row(
                name=f"{name} per-value update",
                value=best_ours,
                unit="values/s",
                baseline=best_river,
                ratio=best_ours / best_river,
                target={"op": ">=", "value": 1.0, "of": "ratio"},
                note=f"{len(xs):,} {family} values, best of {repeats}",
            ).judge()
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run for smoke tests")
    ap.add_argument("--repeats", type=int, help="best of (default 5, quick 2)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = scalar_rows(args.quick, args.repeats)
    print_rows(rows, f"driftd per-value update vs River ({'quick' if args.quick else 'full'})")
    version = getattr(river, "__version__", None)
    machine = report.machine_info(river=version, commit=report.git_commit())
    doc = {
        "machine": machine,
        "rows": [r.as_json() for r in rows],
        "params": {"quick": args.quick, "total_s": round(time.perf_counter() - t0, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
