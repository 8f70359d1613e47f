"""Calibrate a detector's threshold to a target false-alarm rate by simulation on reference data.

Where no closed form maps a threshold to a false-alarm rate (or where the reference stream is
not the Gaussian or Bernoulli noise a closed form assumes), :func:`calibrate` measures it the
way driftd runs detectors: it resamples the reference into fresh stationary streams of
``horizon`` values, runs a fresh detector over each in large batches, counts every drift alarm
(warnings do not count; after a drift the detector restarts fresh and the stream goes on) and
bisects the threshold until the rate per value over all the streams is at most the target
(:mod:`driftd.detectors.rates`; the search is in :mod:`driftd.detectors._calibrate_search`).
Fresh streams matter: several detectors alarm mostly soon
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
simulation, not the sampling error of the reference itself. No value beyond the reference's
extremes is ever simulated: where single extreme values raise the alarms (CUSUM on heavy-tailed
values at a long horizon, where its threshold is lowest), a target of one alarm per ``m`` values
needs a reference of many times ``m`` values (``benchmarks/detectors_rates.py``, F2 CUSUM
student-t3 2M with a 50k reference for a target of 1 per 100k).

Every threshold tried runs on the same simulated streams (common random numbers), so the
measured count is (nearly) monotone in the threshold and the bisection is deterministic for a
seed. Everything here is pure: numpy and scipy, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftd.detectors._calibrate_search import Simulation, block_bootstrap, near, search
from driftd.detectors.adwin import ADWIN
from driftd.detectors.base import Detector, as_float_array
from driftd.detectors.cusum import CUSUM
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.page_hinkley import PageHinkley
from driftd.detectors.rates import dispersion, poisson_interval

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
_MAX_SCALE = 4.0  # the most the default simulation grows for clustered alarms
_MAX_GROWN = 20_000_000  # ... and not beyond this many values ...
_MAX_GROWN_STREAMS = 40  # ... or this many streams, whichever is more
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
        alarms), up to 20,000,000 values or 40 streams, whichever is more (so that long
        horizons get more streams too: at a 2M horizon the default is already 20M values, 10
        streams, whose alarm counts vary several times more than Poisson ones), starting from
        the bracket the first search measured. The count at the target is about
        ``target * n_samples / 100,000``; its relative error is about ``sqrt(D / count)``.
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
        Relative width of the final bracket around the threshold; narrower (down to
        ``rtol / 100``) while the count at its quiet end is more than 2 Poisson standard
        deviations below the target count (a rate steep in the threshold), unless 4 halvings
        in a row find no higher count (a step in the rate: a discrete statistic).
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
    sim = Simulation(x, n, horizon, block, seed)
    tried: list[tuple[float, float]] = []
    best, counts = search(build, sim, allowed, bounds, rate_rises, rtol, target, tried=tried)
    if n_samples is None:  # clustered alarms: as many effective alarms, up to 4x the values
        scale = dispersion(counts, sim.sizes)
        grown = min(
            round(n * min(scale, _MAX_SCALE)), max(_MAX_GROWN, _MAX_GROWN_STREAMS * horizon)
        )
        if scale > 1.5 and grown > n:
            n = grown
            allowed = math.floor(target * n / _PER + 1e-9)
            sim = Simulation(x, n, horizon, block, seed)
            start = near(tried, target, rate_rises)
            best, counts = search(build, sim, allowed, bounds, rate_rises, rtol, target, start)
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
