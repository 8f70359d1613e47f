"""Page-Hinkley test on a scalar stream, vectorised over each batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from driftd.detectors._kernels import F64, Hit, check, scan
from driftd.detectors.base import Alarm, as_float_array, as_scalar, envelope, open_envelope

__all__ = ["PageHinkley"]

_MODES = ("up", "down", "both")


class PageHinkley:
    """Page-Hinkley test for a change in the mean, as River's ``drift.PageHinkley``.

    Each value is compared with the running mean of the values since the last reset; the
    faded cumulative deviations ``S⁺ₜ = alpha·S⁺ₜ₋₁ + (xₜ - x̄ₜ) - δ`` and
    ``S⁻ₜ = alpha·S⁻ₜ₋₁ + (xₜ - x̄ₜ) + δ`` are tracked with their running extremes, and a drift
    fires when ``S⁺ₜ - min S⁺ > λ`` (``mode="up"``), ``max S⁻ - S⁻ₜ > λ`` (``"down"``) or
    either (``"both"``), once ``min_instances`` values have been seen. The detector then
    resets. A batch is processed with a cumulative sum (running mean), a first-order IIR
    filter (the faded sums) and running extremes; the first crossing is located with
    ``argmax``, the detector resets there and the rest of the batch follows. One value at a
    time (a Python number or a size-1 array) takes a plain-Python path with the same
    operations in the same order: same alarms, same state, to the last bit.

    Parameters
    ----------
    min_instances
        Values seen since the last reset before a drift may fire (>= 1).
    delta
        Magnitude of change tolerated, in the units of the stream (>= 0).
    threshold
        Detection threshold λ (> 0).
    alpha
        Forgetting factor of the cumulative sums, in (0, 1].
    mode
        ``"up"``, ``"down"`` or ``"both"``.

    Notes
    -----
    **River.** Detections are those of River 0.26's ``PageHinkley`` with the same parameters,
    index for index (pinned in ``tests/detectors/test_streaming_river.py``); the running mean
    is a cumulative sum divided by the count instead of River's incremental update, which
    differs in the last bit only.

    **Merging.** Not mergeable: every deviation is taken from the running mean of the whole
    prefix, so two partial streams cannot be combined after the fact.

    **False alarms.** With ``alpha = 1`` and the mean known, each side is a CUSUM with drift
    ``δ`` per value; Siegmund's approximation gives its in-control average run length
    ``ARL₀ ≈ (exp(2θb) - 2θb - 1) / (2θ²)`` with ``θ = δ/sigma`` and ``b = λ/sigma + 1.166``, and
    ``"both"`` halves it (:meth:`false_alarms_per_100k`, ``1e5 / ARL₀`` per 100,000 values).
    With ``alpha = 1`` it holds with the estimated mean too: on stationary N(0, 1) streams,
    ``delta=0.25, threshold=20, alpha=1`` predicts 0.63 per 100,000 values and 0.65 were
    measured. Fading (``alpha < 1``) *raises* the rate, because ``S⁺`` settles near
    ``-delta / (1 - alpha)`` and then wanders around its minimum: with the default alpha the
    same setting gives 14 per 100,000, and the defaults give 62 (the formula says 64) on
    N(0, 1) (``tests/detectors/test_streaming_false_alarms.py``).

    **After resets** (fresh streams of 20k, 200k or 2M values, a new detector after every
    drift; ``benchmarks/detectors_rates.py``): the defaults give 61 to 63 per 100,000 on N(0, 1)
    and 57 to 59 on Student-t(3), and on 0/1 streams 0 to 0.34 (p = 0.02) up to 1.1 to 3.2
    (p = 0.1), rising with the horizon. The daemon standardises values and uses
    ``delta=0.25, threshold=50, alpha=1`` (``threshold=55, alpha=1`` on 0/1 errors): at most 1
    per 100,000 (``benchmarks/daemon_rates.py``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1.0, 1, 2000)])
    >>> [(a.index, a.kind) for a in PageHinkley(delta=0.25, threshold=20.0).update(x)]
    [(2026, 'drift')]
    """

    KIND = "driftd.detectors.PageHinkley"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        check("min_instances", min_instances, min_instances >= 1, "an integer >= 1")
        check("delta", delta, delta >= 0, "a number >= 0")
        check("threshold", threshold, threshold > 0, "a number > 0")
        check("alpha", alpha, 0 < alpha <= 1, "a number in (0, 1]")
        check("mode", mode, mode in _MODES, f"one of {_MODES}")
        self.min_instances = int(min_instances)
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.mode = mode
        self._up, self._down = mode != "down", mode != "up"
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        self._n = 0
        self._total = 0.0
        self._s_inc = 0.0
        self._s_dec = 0.0
        self._min_inc = math.inf
        self._max_dec = -1.0  # River's initial value; S⁻ starts at δ > -1, so it never binds

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch in order; return its drift alarms (index = position in the batch)."""
        x = values if type(values) is float else as_scalar(values)
        if x is None or x - x != 0.0 or self._total != self._total:  # a batch, or inf/nan
            return scan("PageHinkley", as_float_array(values).reshape(-1), self._advance)
        # one finite value: the batch path's operations, in its order, on plain floats
        n = self._n + 1
        total = self._total + x
        dev = x - total / n
        alpha = self.alpha
        s_inc = alpha * self._s_inc + (dev - self.delta)
        s_dec = alpha * self._s_dec + (dev + self.delta)
        min_inc = s_inc if s_inc < self._min_inc else self._min_inc
        max_dec = s_dec if s_dec > self._max_dec else self._max_dec
        if self._up:
            stat = s_inc - min_inc
            if self._down:
                down = max_dec - s_dec
                stat = down if down > stat else stat
        else:
            stat = max_dec - s_dec
        self._n, self._total = n, total
        self._s_inc, self._s_dec, self._min_inc, self._max_dec = s_inc, s_dec, min_inc, max_dec
        if stat > self.threshold and n >= self.min_instances:
            self.reset()  # ``statistic`` read just before this equals ``stat``
            return [Alarm("PageHinkley", 0, stat, self.threshold, "drift")]
        return []

    @property
    def statistic(self) -> float:
        """The tested deviation now: ``S⁺ - min S⁺`` (``"up"``), ``max S⁻ - S⁻`` (``"down"``) or
        the larger (``"both"``), compared with ``threshold`` (a drift when above); NaN before
        ``min_instances`` values since the last reset."""
        if self._n < self.min_instances:
            return math.nan
        if self._up:
            stat = self._s_inc - self._min_inc
            if self._down:
                down = self._max_dec - self._s_dec
                stat = down if down > stat else stat
            return stat
        return self._max_dec - self._s_dec

    def _advance(self, x: F64) -> tuple[int, list[Hit]]:
        n = self._n + 1.0 + np.arange(x.size, dtype=np.float64)
        # the carried total goes first so the sums are bitwise those of a sequential loop
        csum = np.cumsum(np.concatenate(([self._total], x)))[1:]
        dev = x - csum / n
        a = [1.0, -self.alpha]
        s_inc = lfilter([1.0], a, dev - self.delta, zi=[self.alpha * self._s_inc])[0]
        s_dec = lfilter([1.0], a, dev + self.delta, zi=[self.alpha * self._s_dec])[0]
        min_inc = np.minimum.accumulate(np.concatenate(([self._min_inc], s_inc)))[1:]
        max_dec = np.maximum.accumulate(np.concatenate(([self._max_dec], s_dec)))[1:]
        if self.mode == "up":
            stat = s_inc - min_inc
        elif self.mode == "down":
            stat = max_dec - s_dec
        else:
            stat = np.maximum(s_inc - min_inc, max_dec - s_dec)
        hit = (n >= self.min_instances) & (stat > self.threshold)
        if hit.any():
            j = int(np.argmax(hit))
            self.reset()
            return j + 1, [(j, float(stat[j]), self.threshold, "drift")]
        self._n += x.size
        self._total = float(csum[-1])
        self._s_inc, self._s_dec = float(s_inc[-1]), float(s_dec[-1])
        self._min_inc, self._max_dec = float(min_inc[-1]), float(max_dec[-1])
        return x.size, []

    def false_alarms_per_100k(self, sigma: float) -> float:
        """Siegmund's approximate false alarms per 100,000 values for noise of std ``sigma``."""
        theta, b = self.delta / sigma, self.threshold / sigma + 1.166
        if theta == 0:
            arl = b * b  # the limit of the formula as θ → 0
        else:
            arl = (math.exp(2 * theta * b) - 2 * theta * b - 1) / (2 * theta * theta)
        sides = 2 if self.mode == "both" else 1
        return 1e5 * sides / arl

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers in a versioned envelope."""
        return envelope(
            self.KIND,
            1,
            {
                "n": self._n,
                "total": self._total,
                "s_inc": self._s_inc,
                "s_dec": self._s_dec,
                "min_inc": self._min_inc,
                "max_dec": self._max_dec,
            },
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._n = int(s["n"])
        self._total = float(s["total"])
        self._s_inc, self._s_dec = float(s["s_inc"]), float(s["s_dec"])
        self._min_inc, self._max_dec = float(s["min_inc"]), float(s["max_dec"])
