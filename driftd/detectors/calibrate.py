"""Calibrate a detector's threshold to a target false-alarm rate by simulation on reference data.

Where no closed form maps a threshold to a false-alarm rate (or where the reference stream is
not the Gaussian or Bernoulli noise a closed form assumes), :func:`calibrate` measures it the
way driftd runs detectors: it resamples the reference into fresh stationary streams of
``horizon`` values, runs a fresh detector over each in large batches, counts every drift alarm
(warnings do not count; after a drift the detector restarts fresh and the stream goes on) and
bisects the threshold until the rate per value over all the streams is at most the target
(:mod:`driftd.detectors.rates`). Fresh streams matter: several detectors alarm mostly soon
after a start or a reset, so one long simulated stream understates what users get after each
reset (issue 14).

The resampling is the i.i.d. bootstrap by default (``block=1``): the moving-block bootstrap
keeps short-range dependence but, measured in issue 14, gave several times fewer alarms than
i.i.d. values with the same mean, so it is used only when ``block > 1`` is asked for (for a
reference that is really autocorrelated). A block bootstrap draws blocks of ``block``
consecutive reference values at uniform random starts: dependence up to about ``block`` lags is
kept, longer dependence is lost. The simulated values are the reference's own values, so ties
are as frequent as in the reference (which matters to rank tests such as KSWIN) and the rate is
conditional on this reference: its confidence interval covers the Poisson noise of the
simulation, not the sampling error of the reference itself.

Every threshold tried runs on the same simulated streams (common random numbers), so the
measured count is (nearly) monotone in the threshold and the bisection is deterministic for a
seed. Everything here is pure: numpy and scipy, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftd.detectors.adwin import ADWIN
from driftd.detectors.base import Detector, as_float_array
from driftd.detectors.cusum import CUSUM
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.page_hinkley import PageHinkley
from driftd.detectors.rates import (
    count_alarms,
    dispersion,
    poisson_interval,
    stream_rng,
    stream_sizes,
)

__all__ = [
    "THRESHOLDS",
    "Calibration",
    "ThresholdSpec",
    "block_bootstrap",
    "calibrate",
    "count_drifts",
    "default_n_samples",
    "poisson_interval",
]

_PER = 100_000
_BATCH = 100_000
_EXPECTED = 50  # alarms expected at the target in the default simulation
_MIN_SAMPLES = 2_000_000  # values simulated at least, by default
_CACHE = 5_000_000  # simulated values kept in memory across thresholds (else redrawn)
_MAX_SCALE = 4.0  # the most the default simulation grows for clustered alarms
_MAX_GROWN = 20_000_000  # ... and not beyond this many values (unless it starts above)
_MIN_STREAMS = 10  # fresh streams simulated at least, by default


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """A detector's threshold parameter: its name, direction, search range and constructor.

    ``rate_rises`` is True when a larger value gives more false alarms (a significance level
    such as ADWIN's ``delta``) and False when it gives fewer (a boundary such as CUSUM's
    ``threshold``). ``build`` makes the detector from the value, keeping the other parameters
    at their defaults (and any companion bound, e.g. the warning level, valid).
    """

    parameter: str
    rate_rises: bool
    bounds: tuple[float, float]
    build: Callable[[float], Detector]


THRESHOLDS: dict[str, ThresholdSpec] = {
    "ADWIN": ThresholdSpec("delta", True, (1e-12, 0.5), lambda v: ADWIN(delta=v)),
    "PageHinkley": ThresholdSpec(
        "threshold", False, (1.0, 1e4), lambda v: PageHinkley(threshold=v)
    ),
    "CUSUM": ThresholdSpec("threshold", False, (0.5, 200.0), lambda v: CUSUM(threshold=v)),
    "DDM": ThresholdSpec(
        "drift_threshold",
        False,
        (1.0, 50.0),
        lambda v: DDM(warning_threshold=min(2.0, v), drift_threshold=v),
    ),
    "EDDM": ThresholdSpec("beta", True, (1e-3, 1.0), lambda v: EDDM(alpha=max(0.95, v), beta=v)),
    "HDDM_A": ThresholdSpec(
        "drift_confidence",
        True,
        (1e-12, 0.5),
        lambda v: HDDM_A(drift_confidence=v, warning_confidence=max(0.005, v)),
    ),
    "HDDM_W": ThresholdSpec(
        "drift_confidence",
        True,
        (1e-12, 0.5),
        lambda v: HDDM_W(drift_confidence=v, warning_confidence=max(0.005, v)),
    ),
    "KSWIN": ThresholdSpec("alpha", True, (1e-10, 0.5), lambda v: KSWIN(alpha=v)),
}


@dataclass(frozen=True, slots=True)
class Calibration:
    """The result of :func:`calibrate`.

    ``rate_per_100k`` is the measured rate at ``threshold``: ``false_alarms`` drifts on
    ``n_values`` simulated values, in ``n_streams`` fresh streams of ``horizon`` values
    (restarted fresh after each drift); ``interval`` is its exact (Garwood) Poisson confidence
    interval at ``confidence``; ``block`` the bootstrap's block length (1: i.i.d.);
    ``detector`` is a fresh detector built with ``threshold``.

    The interval assumes the alarms form a Poisson process. ``dispersion`` checks it: Pearson's
    chi-square per degree of freedom of the alarm counts in up to 100 groups of streams (about
    1 for Poisson, noisy; NaN with a single stream). Well above 1, alarms cluster (e.g. CUSUM
    re-estimating its ``target`` and ``scale`` after each reset, where a poor estimate alarms
    again and again) and the interval is too narrow by about ``sqrt(dispersion)``; raise
    ``n_samples``. Below 1 (PageHinkley's alarms come more regularly than Poisson ones) the
    interval is conservative.
    """

    parameter: str | None
    threshold: float
    target_per_100k: float
    false_alarms: int
    n_values: int
    rate_per_100k: float
    interval: tuple[float, float]
    confidence: float
    dispersion: float
    detector: Detector
    horizon: int
    n_streams: int
    block: int


def _check(name: str, value: object, ok: bool, valid: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid; valid: {valid}")


def block_bootstrap(
    reference: npt.NDArray[np.float64], n: int, block: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``n`` values made of blocks of ``block`` consecutive reference values at random starts."""
    starts = rng.integers(0, reference.size - block + 1, size=-(-n // block))
    idx = (starts[:, None] + np.arange(block)[None, :]).reshape(-1)[:n]
    out: npt.NDArray[np.float64] = reference[idx]
    return out


def count_drifts(
    detector: Detector, stream: npt.NDArray[np.float64], segments: int = 1
) -> npt.NDArray[np.int64]:
    """Drift alarms (not warnings) over ``stream`` in each of ``segments`` equal parts.

    The detector runs over the whole stream in order (one long run, no fresh restarts), in
    batches of at most 100,000 values.
    """
    counts = np.zeros(segments, dtype=np.int64)
    for i, part in enumerate(np.array_split(stream, segments)):
        for start in range(0, part.size, _BATCH):
            alarms = detector.update(part[start : start + _BATCH])
            counts[i] += sum(a.kind == "drift" for a in alarms)
    return counts


def default_n_samples(target_false_alarms_per_100k: float, horizon: int = 20_000) -> int:
    """Values :func:`calibrate` simulates by default: 50 alarms expected at the target, at
    least 10 streams of ``horizon`` values and at least 2,000,000 values."""
    need = math.ceil(_EXPECTED * _PER / target_false_alarms_per_100k - 1e-9)
    return max(_MIN_SAMPLES, need, _MIN_STREAMS * horizon)


def calibrate(
    detector: str | Callable[..., Detector],
    reference: npt.ArrayLike,
    target_false_alarms_per_100k: float,
    *,
    threshold: str | None = None,
    rate_rises: bool | None = None,
    bounds: tuple[float, float] | None = None,
    n_samples: int | None = None,
    horizon: int = 20_000,
    block: int = 1,
    seed: int = 0,
    rtol: float = 1e-3,
    confidence: float = 0.95,
) -> Calibration:
    """Find the threshold whose false-alarm rate on fresh bootstrapped streams is the target.

    The rate is per value over streams that start fresh every ``horizon`` values and restart
    fresh after each drift, as driftd runs a detector (it builds a new one after every alarm):
    the rate a monitor gets when it is reset about every ``horizon`` values or sooner.

    Parameters
    ----------
    detector
        A name in :data:`THRESHOLDS` (``"PageHinkley"``, ``"CUSUM"``, ``"ADWIN"``, ...), a
        detector class (its threshold parameter named by ``threshold``, or taken from
        :data:`THRESHOLDS` when the class is listed there), or a factory called with the
        threshold value.
    reference
        A stationary stream of the detector's input (errors, losses, scores) at least
        ``max(2, block)`` long; it should be much longer than ``block``.
    target_false_alarms_per_100k
        The false-alarm rate to meet, drifts per 100,000 values; ``> 0``, and large enough
        that ``n_samples`` values resolve it (an expected count of at least one).
    threshold
        The keyword that takes the threshold value when ``detector`` is a class.
    rate_rises, bounds
        Whether a larger value gives more false alarms, and the range ``0 < low < high`` to
        search (geometrically); default from :data:`THRESHOLDS`, required otherwise.
    n_samples
        Simulated values per threshold tried, in all streams. By default
        :func:`default_n_samples` (50 alarms expected at the target, at least 10 streams and
        2,000,000 values), then, when the alarms found cluster (``dispersion`` ``D`` above
        1.5), the search is run again on ``min(D, 4)`` times more values (as many effective
        alarms), up to 20,000,000. The count at the
        target is about ``target * n_samples / 100,000``; its relative error is about
        ``sqrt(D / count)``.
    horizon
        Values per fresh stream (the last stream is shorter when it does not divide
        ``n_samples``). Use about the number of values a detector sees between resets in
        production; shorter horizons weigh the alarms right after a start more.
    block
        Moving-block length of the bootstrap; ``1`` (the default) is the i.i.d. bootstrap.
        Longer keeps more dependence: use it only for a reference that is autocorrelated.
    seed
        Seed of the bootstrap; the result is deterministic for a seed.
    rtol
        Relative width of the final bracket around the threshold.
    confidence
        Level of the rate's Poisson interval.

    Returns
    -------
    Calibration
        The most sensitive threshold in the bracket whose measured rate is at most the target
        (raises ``ValueError`` naming ``bounds`` when even the quietest bound exceeds it).

    Examples
    --------
    >>> import numpy as np
    >>> reference = np.random.default_rng(1).normal(0.0, 1.0, 20_000)
    >>> cal = calibrate("CUSUM", reference, 50.0, n_samples=200_000, rtol=0.01)
    >>> cal.parameter, cal.rate_per_100k <= 50.0, cal.n_streams, 4.0 < cal.threshold < 12.0
    ('threshold', True, 10, True)
    """
    build, parameter, spec = _builder(detector, threshold)
    rate_rises, bounds = _search_range(spec, rate_rises, bounds)
    x, target, n, allowed = _checked_run(
        reference, target_false_alarms_per_100k, block, n_samples, horizon, seed, rtol, confidence
    )
    sim = _Simulation(x, n, horizon, block, seed)
    best, counts = _search(build, sim, allowed, bounds, rate_rises, rtol, target)
    if n_samples is None:  # clustered alarms: as many effective alarms, up to 4x the values
        scale = dispersion(counts, sim.sizes)
        if scale > 1.5 and n < _MAX_GROWN:
            n = min(round(n * min(scale, _MAX_SCALE)), _MAX_GROWN)
            allowed = math.floor(target * n / _PER + 1e-9)
            sim = _Simulation(x, n, horizon, block, seed)
            best, counts = _search(build, sim, allowed, bounds, rate_rises, rtol, target)
    count = int(counts.sum())
    return Calibration(
        parameter=parameter,
        threshold=best,
        target_per_100k=target,
        false_alarms=count,
        n_values=n,
        rate_per_100k=count * _PER / n,
        interval=poisson_interval(count, n, confidence),
        confidence=confidence,
        dispersion=dispersion(counts, sim.sizes),
        detector=build(best),
        horizon=horizon,
        n_streams=len(sim.sizes),
        block=block,
    )


class _Simulation:
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


def _builder(
    detector: str | Callable[..., Detector], threshold: str | None
) -> tuple[Callable[[float], Detector], str | None, ThresholdSpec | None]:
    """The factory of ``detector`` by threshold value, the threshold's keyword and its spec."""
    spec: ThresholdSpec | None = None
    build: Callable[[float], Detector]
    if isinstance(detector, str):
        _check("detector", detector, detector in THRESHOLDS, f"one of {sorted(THRESHOLDS)}")
        spec = THRESHOLDS[detector]
        build, threshold = spec.build, spec.parameter
    elif isinstance(detector, type):
        listed = THRESHOLDS.get(detector.__name__)
        if threshold is None and listed is not None:
            spec = listed
            threshold = spec.parameter
        elif listed is not None and listed.parameter == threshold:
            spec = listed
        _check("threshold", threshold, isinstance(threshold, str), "the threshold's keyword")
        cls, name = detector, str(threshold)

        def build(value: float) -> Detector:
            made: Detector = cls(**{name: value})
            return made

    else:
        _check("detector", detector, callable(detector), "a name, a class or a factory")
        build = detector
    return build, threshold, spec


def _search_range(
    spec: ThresholdSpec | None, rate_rises: bool | None, bounds: tuple[float, float] | None
) -> tuple[bool, tuple[float, float]]:
    """``rate_rises`` and ``bounds``, defaulted from ``spec`` and checked."""
    if spec is not None:
        rate_rises = spec.rate_rises if rate_rises is None else rate_rises
        bounds = spec.bounds if bounds is None else bounds
    _check("rate_rises", rate_rises, isinstance(rate_rises, bool), "True or False")
    _check("bounds", bounds, bounds is not None and len(bounds) == 2, "a pair (low, high)")
    assert bounds is not None and rate_rises is not None
    lo, hi = float(bounds[0]), float(bounds[1])
    _check("bounds", bounds, 0 < lo < hi and math.isfinite(hi), "0 < low < high < inf")
    return rate_rises, bounds


def _checked_run(
    reference: npt.ArrayLike,
    target_false_alarms_per_100k: float,
    block: int,
    n_samples: int | None,
    horizon: int,
    seed: int,
    rtol: float,
    confidence: float,
) -> tuple[npt.NDArray[np.float64], float, int, int]:
    """The reference as a flat array, the target, the values to simulate and the drifts allowed."""
    x = as_float_array(reference).reshape(-1)
    target = float(target_false_alarms_per_100k)
    _check("target_false_alarms_per_100k", target, target > 0 and math.isfinite(target), "> 0")
    _check("block", block, isinstance(block, int) and block >= 1, "an integer >= 1")
    _check("reference", f"<{x.size} values>", x.size >= max(2, block), f">= max(2, {block}) values")
    _check("reference", "<non-finite values>", bool(np.isfinite(x).all()), "finite values")
    _check("horizon", horizon, isinstance(horizon, int) and horizon >= 1, "an integer >= 1")
    n = default_n_samples(target, horizon) if n_samples is None else n_samples
    _check("n_samples", n_samples, isinstance(n, int) and n >= 1, "None or an integer >= 1")
    allowed = math.floor(target * n / _PER + 1e-9)
    _check("n_samples", n_samples, allowed >= 1, f">= {math.ceil(_PER / target)} for this target")
    _check("seed", seed, isinstance(seed, int) and seed >= 0, "an integer >= 0")
    _check("rtol", rtol, 0 < rtol < 1, "a number in (0, 1)")
    _check("confidence", confidence, 0 < confidence < 1, "a number in (0, 1)")
    return x, target, n, allowed


def _search(
    build: Callable[[float], Detector],
    sim: _Simulation,
    allowed: int,
    bounds: tuple[float, float],
    rate_rises: bool,
    rtol: float,
    target: float,
) -> tuple[float, npt.NDArray[np.int64]]:
    """The most sensitive threshold in ``bounds`` with at most ``allowed`` drifts, and its counts.

    Bisects geometrically between the quietest and the loudest end until the bracket is
    ``rtol`` wide; every value runs on the same streams. The counts are per stream.
    """

    def drifts(value: float) -> npt.NDArray[np.int64]:
        """Drifts per stream, stopping after the stream that takes them above ``allowed``."""
        return count_alarms(lambda: build(value), sim.streams(), stop_above=allowed)

    lo, hi = float(bounds[0]), float(bounds[1])
    quiet, loud = (lo, hi) if rate_rises else (hi, lo)  # fewest / most false alarms
    best, best_counts = quiet, drifts(quiet)
    if best_counts.sum() > allowed:
        raise ValueError(
            f"bounds={bounds!r} is invalid; valid: a range whose quietest end ({quiet}) has at "
            f"most {target} false alarms per 100k on the simulated streams (it has more)"
        )
    loud_counts = drifts(loud)
    loud_over = bool(loud_counts.sum() > allowed)
    if not loud_over:
        best, best_counts = loud, loud_counts
    while loud_over and abs(math.log(loud / quiet)) > math.log1p(rtol):
        mid = math.sqrt(quiet * loud)
        counts = drifts(mid)
        if counts.sum() <= allowed:
            quiet, best, best_counts = mid, mid, counts
        else:
            loud = mid
    return best, best_counts
