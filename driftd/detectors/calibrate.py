"""Calibrate a detector's threshold to a target false-alarm rate by simulation on reference data.

Where no closed form maps a threshold to a false-alarm rate (or where the reference stream is
not the Gaussian or Bernoulli noise a closed form assumes), :func:`calibrate` measures it:
it resamples the reference stream with a moving-block bootstrap into one long stationary
stream, runs the detector over it in large batches, counts its drift alarms (warnings do not
count) and bisects the threshold until the measured rate is at most the target.

The bootstrap draws blocks of ``block`` consecutive reference values at uniform random starts
and concatenates them: within a block the reference's short-range dependence (autocorrelation
up to about ``block`` lags) is kept; across block seams it is broken, and dependence longer
than ``block`` is lost. ``block=1`` is the i.i.d. bootstrap. The simulated values are the
reference's own values, so ties are as frequent as in the reference (which matters to rank
tests such as KSWIN) and the rate is conditional on this reference: its confidence interval
covers the Poisson noise of the simulation, not the sampling error of the reference itself.

Every threshold tried runs on the same simulated stream (common random numbers), so the
measured count is (nearly) monotone in the threshold and the bisection is deterministic for a
seed. Everything here is pure: numpy and scipy, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from driftd.detectors.adwin import ADWIN
from driftd.detectors.base import Detector, as_float_array
from driftd.detectors.cusum import CUSUM
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.page_hinkley import PageHinkley

__all__ = [
    "THRESHOLDS",
    "Calibration",
    "ThresholdSpec",
    "block_bootstrap",
    "calibrate",
    "count_drifts",
    "poisson_interval",
]

_PER = 100_000
_BATCH = 100_000
_SEGMENTS = 20


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

    ``rate_per_100k`` is the measured rate at ``threshold`` on ``n_values`` simulated values
    (``false_alarms`` drifts), ``interval`` its exact (Garwood) Poisson confidence interval
    at ``confidence``; ``detector`` is a fresh detector built with ``threshold``.

    The interval assumes the alarms form a Poisson process. ``dispersion`` checks it: the
    variance-to-mean ratio of the alarm counts in 20 equal segments of the simulated stream
    (about 1 for Poisson, noisy). Well above 1, alarms cluster (e.g. CUSUM re-estimating its
    ``target`` and ``scale`` after each reset, where a poor estimate alarms again and again) and
    the interval is too narrow by about ``sqrt(dispersion)``; raise ``n_samples``.
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

    The detector runs over the whole stream in order, in batches of at most 100,000 values.
    """
    counts = np.zeros(segments, dtype=np.int64)
    for i, part in enumerate(np.array_split(stream, segments)):
        for start in range(0, part.size, _BATCH):
            alarms = detector.update(part[start : start + _BATCH])
            counts[i] += sum(a.kind == "drift" for a in alarms)
    return counts


def poisson_interval(count: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact (Garwood) confidence interval for a Poisson rate per 100,000 values."""
    tail = (1.0 - confidence) / 2
    low = 0.0 if count == 0 else float(stats.chi2.ppf(tail, 2 * count)) / 2
    high = float(stats.chi2.ppf(1 - tail, 2 * count + 2)) / 2
    return low * _PER / n, high * _PER / n


def calibrate(
    detector: str | Callable[..., Detector],
    reference: npt.ArrayLike,
    target_false_alarms_per_100k: float,
    *,
    threshold: str | None = None,
    rate_rises: bool | None = None,
    bounds: tuple[float, float] | None = None,
    n_samples: int = 1_000_000,
    block: int = 50,
    seed: int = 0,
    rtol: float = 1e-3,
    confidence: float = 0.95,
) -> Calibration:
    """Find the threshold whose false-alarm rate on bootstrapped reference data is the target.

    Parameters
    ----------
    detector
        A name in :data:`THRESHOLDS` (``"PageHinkley"``, ``"CUSUM"``, ``"ADWIN"``, ...), a
        detector class (its threshold parameter named by ``threshold``, or taken from
        :data:`THRESHOLDS` when the class is listed there), or a factory called with the
        threshold value.
    reference
        A stationary stream of the detector's input (errors, losses, scores) at least
        ``block`` long; it should be much longer than ``block``.
    target_false_alarms_per_100k
        The false-alarm rate to meet, drifts per 100,000 values; ``> 0``, and large enough
        that ``n_samples`` values resolve it (an expected count of at least one).
    threshold
        The keyword that takes the threshold value when ``detector`` is a class.
    rate_rises, bounds
        Whether a larger value gives more false alarms, and the range ``0 < low < high`` to
        search (geometrically); default from :data:`THRESHOLDS`, required otherwise.
    n_samples
        Simulated values per threshold tried. The count at the target is about
        ``target * n_samples / 100,000``; its relative Poisson error is one over its square root.
    block
        Moving-block length of the bootstrap (``1``: i.i.d.); longer keeps more dependence.
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
    >>> cal = calibrate("CUSUM", reference, 50.0, n_samples=100_000, rtol=0.01)
    >>> cal.parameter, cal.rate_per_100k <= 50.0, 4.0 < cal.threshold < 8.0
    ('threshold', True, True)
    """
    build, parameter, spec = _builder(detector, threshold)
    rate_rises, bounds = _search_range(spec, rate_rises, bounds)
    x, target, allowed = _checked_run(
        reference, target_false_alarms_per_100k, block, n_samples, seed, rtol, confidence
    )
    stream = block_bootstrap(x, n_samples, block, np.random.default_rng(seed))
    best, best_count = _search(build, stream, allowed, bounds, rate_rises, rtol, target)
    per_segment = count_drifts(build(best), stream, _SEGMENTS)
    mean = per_segment.mean()
    dispersion = float(per_segment.var(ddof=1) / mean) if mean > 0 else 1.0
    return Calibration(
        parameter=parameter,
        threshold=best,
        target_per_100k=target,
        false_alarms=best_count,
        n_values=n_samples,
        rate_per_100k=best_count * _PER / n_samples,
        interval=poisson_interval(best_count, n_samples, confidence),
        confidence=confidence,
        dispersion=dispersion,
        detector=build(best),
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
    n_samples: int,
    seed: int,
    rtol: float,
    confidence: float,
) -> tuple[npt.NDArray[np.float64], float, int]:
    """The reference as a flat array, the target rate and the drifts it allows in the stream."""
    x = as_float_array(reference).reshape(-1)
    target = float(target_false_alarms_per_100k)
    _check("target_false_alarms_per_100k", target, target > 0 and math.isfinite(target), "> 0")
    _check("block", block, isinstance(block, int) and block >= 1, "an integer >= 1")
    _check("reference", f"<{x.size} values>", x.size >= max(2, block), f">= max(2, {block}) values")
    _check("reference", "<non-finite values>", bool(np.isfinite(x).all()), "finite values")
    _check("n_samples", n_samples, isinstance(n_samples, int) and n_samples >= 1, ">= 1")
    allowed = math.floor(target * n_samples / _PER + 1e-9)
    _check("n_samples", n_samples, allowed >= 1, f">= {math.ceil(_PER / target)} for this target")
    _check("seed", seed, isinstance(seed, int) and seed >= 0, "an integer >= 0")
    _check("rtol", rtol, 0 < rtol < 1, "a number in (0, 1)")
    _check("confidence", confidence, 0 < confidence < 1, "a number in (0, 1)")
    return x, target, allowed


def _search(
    build: Callable[[float], Detector],
    stream: npt.NDArray[np.float64],
    allowed: int,
    bounds: tuple[float, float],
    rate_rises: bool,
    rtol: float,
    target: float,
) -> tuple[float, int]:
    """The most sensitive threshold in ``bounds`` with at most ``allowed`` drifts, and its count.

    Bisects geometrically between the quietest and the loudest end until the bracket is
    ``rtol`` wide; every value runs on the same ``stream``.
    """

    def drifts(value: float) -> int:
        """Drifts over the stream, or the first count above ``allowed`` (stops early)."""
        det, total, start, size = build(value), 0, 0, 4096
        while start < stream.size and total <= allowed:
            total += sum(a.kind == "drift" for a in det.update(stream[start : start + size]))
            start, size = start + size, min(2 * size, _BATCH)
        return total

    lo, hi = float(bounds[0]), float(bounds[1])
    quiet, loud = (lo, hi) if rate_rises else (hi, lo)  # fewest / most false alarms
    best, best_count = quiet, drifts(quiet)
    if best_count > allowed:
        raise ValueError(
            f"bounds={bounds!r} is invalid; valid: a range whose quietest end ({quiet}) has at "
            f"most {target} false alarms per 100k on the simulated stream (it has more)"
        )
    loud_count = drifts(loud)
    if loud_count <= allowed:
        best, best_count = loud, loud_count
    while loud_count > allowed and abs(math.log(loud / quiet)) > math.log1p(rtol):
        mid = math.sqrt(quiet * loud)
        count = drifts(mid)
        if count <= allowed:
            quiet, best, best_count = mid, mid, count
        else:
            loud, loud_count = mid, count
    return best, best_count
