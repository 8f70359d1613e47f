"""The threshold search of :func:`driftd.detectors.calibrate.calibrate` on fresh streams.

:class:`Simulation` holds the bootstrapped fresh streams (the same on every pass: common
random numbers); :func:`search` bisects a threshold on them for a count of drifts; :func:`near`
turns a first search's measurements into a first bracket for a rerun on more streams. Pure:
numpy only, seeded, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import Detector
from driftd.detectors.rates import count_alarms, stream_rng, stream_sizes

__all__ = ["Simulation", "block_bootstrap", "near", "search"]

_PER = 100_000
_CACHE = 5_000_000  # simulated values kept in memory across thresholds (else redrawn)
_STALL = 4  # halvings past rtol without a higher count before the search stops
_NEAR = 2.0  # the rerun's first bracket: values the first search measured within this factor


def block_bootstrap(
    reference: npt.NDArray[np.float64], n: int, block: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``n`` values made of blocks of ``block`` consecutive reference values at random starts."""
    starts = rng.integers(0, reference.size - block + 1, size=-(-n // block))
    idx = (starts[:, None] + np.arange(block)[None, :]).reshape(-1)[:n]
    out: npt.NDArray[np.float64] = reference[idx]
    return out


class Simulation:
    """The bootstrapped fresh streams, the same on every pass (kept in memory up to 5M values)."""

    def __init__(
        self, reference: npt.NDArray[np.float64], n: int, horizon: int, block: int, seed: int
    ) -> None:
        self.reference, self.block, self.seed = reference, block, seed
        self.sizes = stream_sizes(n, horizon)
        self._kept: list[npt.NDArray[np.float64]] | None = (
            [self._draw(i, s) for i, s in enumerate(self.sizes)] if n <= _CACHE else None
        )

    def _draw(self, i: int, size: int) -> npt.NDArray[np.float64]:
        return block_bootstrap(self.reference, size, self.block, stream_rng(self.seed, i))

    def streams(self) -> Iterator[npt.NDArray[np.float64]]:
        if self._kept is not None:
            yield from self._kept
        else:
            for i, size in enumerate(self.sizes):
                yield self._draw(i, size)


def search(
    build: Callable[[float], Detector],
    sim: Simulation,
    allowed: int,
    bounds: tuple[float, float],
    rate_rises: bool,
    rtol: float,
    target: float,
    start: tuple[float, float] | None = None,
    *,
    tried: list[tuple[float, float]] | None = None,
) -> tuple[float, npt.NDArray[np.int64]]:
    """The most sensitive threshold in ``bounds`` with at most ``allowed`` drifts, and its counts.

    Bisects geometrically between a quiet and a loud end until the bracket is ``rtol`` wide
    and the count at its quiet end is within 2 Poisson standard deviations (``2 sqrt(allowed)``)
    below ``allowed``, or, where the rate is that steep in the threshold, ``rtol / 100`` wide
    or 4 halvings past ``rtol`` found no higher count (a step in the rate);
    every value runs on the same streams. The counts are per stream. ``start`` is a first
    bracket (quiet, loud) to try; an end that turns out on the wrong side is replaced by its
    bound. ``tried`` collects (value, rate per 100k) of each value run (estimated from the
    streams run when the run stopped early).
    """

    def drifts(value: float) -> npt.NDArray[np.int64]:
        """Drifts per stream, stopping after the stream that takes them above ``allowed``."""
        counts = count_alarms(lambda: build(value), sim.streams(), stop_above=allowed)
        if tried is not None:
            tried.append((value, counts.sum() * _PER / sum(sim.sizes[: counts.size])))
        return counts

    lo, hi = float(bounds[0]), float(bounds[1])
    quiet_end, loud_end = (lo, hi) if rate_rises else (hi, lo)  # fewest / most false alarms
    quiet, loud = (quiet_end, loud_end) if start is None else start
    best, best_counts = quiet, drifts(quiet)
    if best_counts.sum() > allowed and quiet != quiet_end:
        quiet, best, best_counts = quiet_end, quiet_end, drifts(quiet_end)
    if best_counts.sum() > allowed:
        raise ValueError(
            f"bounds={bounds!r} is invalid; valid: a range whose quietest end ({quiet_end}) has "
            f"at most {target} false alarms per 100k on the simulated streams (it has more)"
        )
    loud_counts = drifts(loud)
    if loud_counts.sum() <= allowed and loud != loud_end:
        quiet, best, best_counts, loud = loud, loud, loud_counts, loud_end
        loud_counts = drifts(loud)
    loud_over = bool(loud_counts.sum() > allowed)
    if not loud_over:
        best, best_counts = loud, loud_counts
    # Past rtol, go on while the count at the best value is more than 2 Poisson standard
    # deviations below ``allowed`` (a rate that is steep in the threshold), down to rtol / 100,
    # unless 4 halvings in a row found no higher count (a step: a discrete statistic).
    short, stalled = 2 * math.sqrt(allowed), 0
    while loud_over and stalled < _STALL:
        width = abs(math.log(loud / quiet))
        steep = allowed - best_counts.sum() > short and width > math.log1p(rtol / 100)
        if width <= math.log1p(rtol) and not steep:
            break
        mid = math.sqrt(quiet * loud)
        counts = drifts(mid)
        higher = counts.sum() > best_counts.sum()
        if counts.sum() <= allowed:
            quiet, best, best_counts = mid, mid, counts
        else:
            loud = mid
        stalled = (
            0 if width > math.log1p(rtol) or (higher and counts.sum() <= allowed) else stalled + 1
        )
    return best, best_counts


def near(tried: list[tuple[float, float]], target: float, rate_rises: bool) -> tuple[float, float]:
    """A bracket (quiet, loud) from a first search's (value, rate): the loudest value measured
    at most ``target / 2`` and the quietest at least ``2 * target`` (else the extremes tried)."""
    order = sorted(tried, reverse=not rate_rises)  # quietest first
    quiet = [i for i, (_, r) in enumerate(order) if r <= target / _NEAR]
    loud = [i for i, (_, r) in enumerate(order) if r >= target * _NEAR]
    q, k = (quiet[-1] if quiet else 0), (loud[0] if loud else len(order) - 1)
    return (order[q][0], order[k][0]) if q < k else (order[0][0], order[-1][0])
