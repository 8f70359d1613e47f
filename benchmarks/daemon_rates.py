"""False alarms per 100k of the daemon's default detector configurations, on fresh streams.

What a user gets who writes ``detector = "X"`` and a stream, nothing else: the detector built
as the daemon builds it (``make_detector``: the daemon's defaults, standardisation on the
streams that need it), on stationary streams that restart fresh every ``horizon`` values and
after every drift (as driftd rebuilds a detector after an alarm). Error streams are Bernoulli
(0.02, 0.05, 0.1); feature streams are latencies in milliseconds (5,000 + 800 x Gaussian,
Student-t with 3 degrees of freedom or Laplace noise), so raw-unit thresholds would show.
Target: at most 1 false alarm per 100k for every default (README, ``detector_monitor``).

Run: ``python benchmarks/daemon_rates.py [--quick]``; writes
``benchmarks/results/daemon_rates.json``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

from driftd.config import DetectorSettings
from driftd.daemon.detector_monitor import DAEMON_DEFAULTS, make_detector
from driftd.detectors.rates import GENERATORS, StreamGenerator, fresh_rate

try:
    from benchmarks.report import Row, report
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import Row, report  # type: ignore[no-redef]

DETECTORS = ("ADWIN", "PageHinkley", "CUSUM", "DDM", "EDDM", "HDDM_A", "HDDM_W", "KSWIN")
BINARY_ONLY = ("DDM", "EDDM", "HDDM_A", "HDDM_W")
TARGET = 1.0  # false alarms per 100k values


def _latency(gen: StreamGenerator) -> StreamGenerator:
    def generate(rng: np.random.Generator, n: int) -> np.ndarray:
        return 5_000.0 + 800.0 * gen(rng, n)

    return generate


def daemon_rate_rows(quick: bool) -> list[Row]:
    """One row per detector, stream family and horizon: the fresh-stream rate of the daemon's
    default configuration, with its 95 % Poisson interval in the note."""
    n_values = 1_000_000 if quick else 4_000_000
    horizons = (20_000, 200_000) if quick else (20_000, 200_000, 2_000_000)
    rows = []
    for det in DETECTORS:
        for fam, gen in GENERATORS.items():
            binary = fam.startswith("bernoulli")
            if det in BINARY_ONLY and not binary:
                continue
            spec = DetectorSettings(detector=det, stream="error" if binary else "latency")
            stream = gen if binary else _latency(gen)
            for horizon in horizons:
                t0 = time.perf_counter()
                r = fresh_rate(
                    functools.partial(make_detector, spec, "binary"),
                    stream,
                    horizon=horizon,
                    n_values=max(n_values, horizon),
                    seed=2026,
                )
                lo, hi = r.interval
                rows.append(
                    Row(
                        f"daemon default {det} on {fam}{'' if binary else ' (ms)'}, "
                        f"fresh {horizon:,}",
                        r.rate_per_100k,
                        "false alarms / 100k",
                        target={"op": "<=", "value": TARGET, "of": "value"},
                        note=f"95% CI [{lo:.2f}, {hi:.2f}]; {r.false_alarms} in "
                        f"{r.n_values:,} values; {time.perf_counter() - t0:.1f}s",
                    ).judge()
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M values per row, two horizons")
    ap.add_argument("--out", default="benchmarks/results/daemon_rates.json")
    args = ap.parse_args(argv)
    rows = daemon_rate_rows(args.quick)
    title = "daemon default detectors: false alarms per 100k on fresh streams"
    defaults = {f"{d}/{b}": p for (d, b), p in DAEMON_DEFAULTS.items()}
    return report(rows, title, args.out, defaults=defaults)


if __name__ == "__main__":
    raise SystemExit(main())
