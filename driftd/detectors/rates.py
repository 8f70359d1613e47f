"""A detector's false-alarm rate on fresh stationary streams, as driftd runs it.

driftd builds a fresh detector when a monitor starts and restarts it after every drift, so the
false-alarm rate its users see is the rate per value over streams that start fresh: ``K``
detectors, each fed its own stationary stream of ``horizon`` values, every drift counted and
followed by a restart. One long stream instead hides the bursts that some detectors (DDM,
CUSUM estimating its target and scale) produce soon after a start or a reset. Everything here
is pure: numpy and scipy, seeded, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from driftd.detectors.base import Detector

__all__ = [
    "GENERATORS",
    "FreshRate",
    "StreamGenerator",
    "bernoulli",
    "count_alarms",
    "dispersion",
    "fresh_rate",
    "fresh_streams",
    "gaussian",
    "laplace",
    "poisson_interval",
    "stream_rng",
    "student_t",
]

PER = 100_000  # rates are per this many values
BATCH = 100_000  # values per update() call

StreamGenerator = Callable[[np.random.Generator, int], npt.NDArray[np.float64]]
"""``generate(rng, n)``: ``n`` stationary values drawn with ``rng``."""


def bernoulli(p: float) -> StreamGenerator:
    """0/1 error indicators, 1 with probability ``p``."""
    if not 0 < p < 1:
        raise ValueError(f"p={p!r} is invalid; valid: a number in (0, 1)")

    def generate(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return (rng.random(n) < p).astype(np.float64)

    return generate


def gaussian(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """N(0, 1) values."""
    return rng.standard_normal(n)


def student_t(df: float = 3.0) -> StreamGenerator:
    """Student t values with ``df > 2`` degrees of freedom, scaled to unit variance."""
    if not df > 2:
        raise ValueError(f"df={df!r} is invalid; valid: a number > 2 (finite variance)")
    scale = math.sqrt((df - 2) / df)

    def generate(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = rng.standard_t(df, n) * scale
        return out

    return generate


def laplace(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Laplace values with mean 0 and unit variance (exponential tails)."""
    return rng.laplace(0.0, 1 / math.sqrt(2), n)


GENERATORS: dict[str, StreamGenerator] = {
    "bernoulli-0.02": bernoulli(0.02),
    "bernoulli-0.05": bernoulli(0.05),
    "bernoulli-0.1": bernoulli(0.1),
    "gaussian": gaussian,
    "student-t3": student_t(3.0),
    "laplace": laplace,
}
"""The standard stationary stream families, by name."""


@dataclass(frozen=True, slots=True)
class FreshRate:
    """Drift alarms over ``n_streams`` fresh streams of ``horizon`` values (``n_values`` in all).

    ``rate_per_100k`` is ``false_alarms`` per 100,000 values and ``interval`` its exact (Garwood)
    Poisson interval at ``confidence``. The interval assumes Poisson alarms; ``dispersion``
    (Pearson's chi-square per degree of freedom of the counts in up to 100 groups of streams, 1
    for Poisson, NaN with one stream) flags clustering, which widens it by about its root.
    """

    false_alarms: int
    n_values: int
    n_streams: int
    horizon: int
    rate_per_100k: float
    interval: tuple[float, float]
    confidence: float
    dispersion: float


def poisson_interval(count: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact (Garwood) confidence interval for a Poisson rate per 100,000 values."""
    tail = (1.0 - confidence) / 2
    low = 0.0 if count == 0 else float(stats.chi2.ppf(tail, 2 * count)) / 2
    high = float(stats.chi2.ppf(1 - tail, 2 * count + 2)) / 2
    return low * PER / n, high * PER / n


def stream_rng(seed: int, i: int) -> np.random.Generator:
    """The generator of stream ``i`` for ``seed``: independent streams, the same for any count."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))


def stream_sizes(n_values: int, horizon: int) -> list[int]:
    """``horizon`` values per stream, the last one shorter so that they add up to ``n_values``."""
    full, rest = divmod(n_values, horizon)
    return [horizon] * full + ([rest] if rest else [])


def fresh_streams(
    generate: StreamGenerator, *, horizon: int, n_values: int, seed: int
) -> Iterator[npt.NDArray[np.float64]]:
    """The streams of ``fresh_rate``: stream ``i`` drawn with ``stream_rng(seed, i)``."""
    for i, size in enumerate(stream_sizes(n_values, horizon)):
        yield np.asarray(generate(stream_rng(seed, i), size), dtype=np.float64)


def _drifts_self_resetting(
    make: Callable[[], Detector], x: npt.NDArray[np.float64], batch: int
) -> int:
    det, count = make(), 0
    for start in range(0, x.size, batch):
        count += sum(a.kind == "drift" for a in det.update(x[start : start + batch]))
    return count


def _drifts_rebuilt(make: Callable[[], Detector], x: npt.NDArray[np.float64], batch: int) -> int:
    det, count, start = make(), 0, 0
    while start < x.size:
        part = x[start : start + batch]
        first = next((a.index for a in det.update(part) if a.kind == "drift"), None)
        if first is None:
            start += part.size
        else:
            count, start, det = count + 1, start + first + 1, make()
    return count


def count_alarms(
    make: Callable[[], Detector],
    streams: Iterable[npt.NDArray[np.float64]],
    *,
    batch: int = BATCH,
    stop_above: int | None = None,
    rebuild: bool = False,
) -> npt.NDArray[np.int64]:
    """Drift alarms (warnings do not count) on each stream, each run by a fresh ``make()``.

    Every drift is counted and the stream goes on from the next value with a fresh detector:
    driftd's detectors reset themselves completely after a drift (``base.Detector``), so their
    own ``update`` is followed; ``rebuild=True`` instead builds a new detector with ``make()``
    after each drift and feeds it the rest (for detectors that do not reset themselves).
    Stops after the first stream that takes the total above ``stop_above``.
    """
    run = _drifts_rebuilt if rebuild else _drifts_self_resetting
    counts: list[int] = []
    total = 0
    for x in streams:
        counts.append(run(make, x, batch))
        total += counts[-1]
        if stop_above is not None and total > stop_above:
            break
    return np.array(counts, dtype=np.int64)


def dispersion(counts: npt.NDArray[np.int64], sizes: list[int], groups: int = 100) -> float:
    """Pearson chi-square per degree of freedom of the counts in up to ``groups`` stream groups.

    About 1 when alarms are Poisson with one rate; above 1 when they cluster. NaN with fewer
    than two streams, 1.0 without alarms.
    """
    g = min(groups, counts.size)
    if g < 2:
        return math.nan
    total = int(counts.sum())
    if total == 0:
        return 1.0
    c = np.array([part.sum() for part in np.array_split(counts, g)], dtype=np.float64)
    v = np.array([part.sum() for part in np.array_split(np.asarray(sizes), g)], dtype=np.float64)
    expected = total * v / v.sum()
    return float(((c - expected) ** 2 / expected).sum() / (g - 1))


def fresh_rate(
    make: Callable[[], Detector],
    generate: StreamGenerator,
    *,
    horizon: int = 20_000,
    n_values: int = 2_000_000,
    seed: int = 0,
    batch: int = BATCH,
    confidence: float = 0.95,
    rebuild: bool = False,
) -> FreshRate:
    """False alarms per 100,000 values over fresh streams of ``horizon`` values.

    ``n_values`` in all, as ``ceil(n_values / horizon)`` streams (the last one shorter when
    ``horizon`` does not divide it), stream ``i`` drawn by ``generate(stream_rng(seed, i), size)``
    and run by a fresh ``make()`` in batches of ``batch`` values; after a drift the detector
    restarts fresh (see :func:`count_alarms`) and the stream goes on.

    Examples
    --------
    >>> from driftd.detectors.cusum import CUSUM
    >>> r = fresh_rate(lambda: CUSUM(target=0.0, scale=1.0, threshold=5.0), gaussian,
    ...                horizon=10_000, n_values=200_000, seed=1)
    >>> r.n_streams, r.interval[0] < 213 < r.interval[1]  # Siegmund: 213 per 100k
    (20, True)
    """
    for name, value, lowest in (
        ("horizon", horizon, 1),
        ("n_values", n_values, 1),
        ("batch", batch, 1),
    ):
        if not (isinstance(value, int) and value >= lowest):
            raise ValueError(f"{name}={value!r} is invalid; valid: an integer >= {lowest}")
    if not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"seed={seed!r} is invalid; valid: an integer >= 0")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} is invalid; valid: a number in (0, 1)")
    sizes = stream_sizes(n_values, horizon)
    streams = fresh_streams(generate, horizon=horizon, n_values=n_values, seed=seed)
    counts = count_alarms(make, streams, batch=batch, rebuild=rebuild)
    total = int(counts.sum())
    return FreshRate(
        false_alarms=total,
        n_values=n_values,
        n_streams=len(sizes),
        horizon=horizon,
        rate_per_100k=total * PER / n_values,
        interval=poisson_interval(total, n_values, confidence),
        confidence=confidence,
        dispersion=dispersion(counts, sizes),
    )
