"""A detector fed standardised values: thresholds in standard deviations, not in raw units.

``Standardized(inner, warmup)`` holds back the first ``warmup`` values, estimates their mean
and standard deviation, and from then on feeds ``inner`` with ``(x - mean) / sd``. A
PageHinkley threshold of 50 then means 50 standard deviations of accumulated deviation on a
latency in milliseconds as on a probability, so one default holds on every stream. The
warm-up values only estimate the scale: the inner detector never sees them. The scale is
fixed after the warm-up (a reference, not a moving target) and survives the inner
detector's resets; its floor (``min_sd``, and 1e-9 of the mean's magnitude) keeps a constant
warm-up from turning the first change into an infinite statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import Alarm, Detector, as_float_array, envelope, open_envelope

__all__ = ["Standardized"]

_KIND = "driftd.standardized"


class Standardized:
    """Wraps a detector: estimate mean and sd on a warm-up, then feed it z-scores.

    Examples
    --------
    >>> from driftd.detectors import PageHinkley
    >>> rng = np.random.default_rng(0)
    >>> det = Standardized(PageHinkley(delta=0.25, threshold=50.0, alpha=1.0), warmup=1_000)
    >>> det.update(rng.normal(5_000.0, 800.0, 50_000))  # milliseconds: no false alarm
    []
    >>> round(det.mean, -2), round(det.sd, -1)
    (5000.0, 780.0)
    """

    def __init__(self, inner: Detector, warmup: int = 1_000, min_sd: float = 1e-12) -> None:
        if warmup < 2:
            raise ValueError(f"warmup must be at least 2 values, got {warmup!r}")
        if not min_sd > 0:
            raise ValueError(f"min_sd must be positive, got {min_sd!r}")
        self.inner, self.warmup, self.min_sd = inner, int(warmup), float(min_sd)
        self.mean = math.nan
        self.sd = math.nan
        self._held: list[float] = []

    @property
    def ready(self) -> bool:
        """Whether the warm-up is over and values reach the inner detector."""
        return not math.isnan(self.sd)

    @property
    def statistic(self) -> float:
        """The inner detector's statistic (on z-scores); NaN during the warm-up."""
        return self.inner.statistic if self.ready else math.nan

    @property
    def threshold(self) -> float:
        """The inner detector's threshold (in standard deviations where it is in units)."""
        return self.inner.threshold

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume values in order; alarms carry indices into this batch."""
        x = as_float_array(values).reshape(-1)
        start = 0
        if not self.ready:
            start = min(x.size, self.warmup - len(self._held))
            self._held.extend(x[:start].tolist())
            if len(self._held) < self.warmup:
                return []
            held = np.asarray(self._held)
            self.mean = float(held.mean())
            self.sd = max(float(held.std(ddof=1)), self.min_sd, 1e-9 * abs(self.mean))
            self._held = []
        if start >= x.size:
            return []
        alarms = self.inner.update((x[start:] - self.mean) / self.sd)
        if not start:
            return alarms
        return [
            Alarm(a.detector, a.index + start, a.statistic, a.threshold, a.kind) for a in alarms
        ]

    def reset(self) -> None:
        """Forget everything, the scale included."""
        self.inner.reset()
        self.mean = self.sd = math.nan
        self._held = []

    def state_dict(self) -> dict[str, Any]:
        """The scale (or the warm-up so far) and the inner detector's state."""
        return envelope(
            _KIND,
            1,
            {
                "warmup": self.warmup,
                "mean": self.mean,
                "sd": self.sd,
                "held": np.asarray(self._held, np.float64),
                "inner": self.inner.state_dict(),
            },
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, _KIND, 1)
        self.warmup = int(s["warmup"])
        self.mean, self.sd = float(s["mean"]), float(s["sd"])
        self._held = np.asarray(s["held"], np.float64).tolist()
        self.inner.load_state_dict(s["inner"])
