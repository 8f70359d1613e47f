"""Two-sided tabular CUSUM on a standardised scalar stream, vectorised over each batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors import _kernels as kern
from driftd.detectors._kernels import F64, Hit, check, scan
from driftd.detectors.base import Alarm, as_float_array, as_scalar, envelope, open_envelope

__all__ = ["CUSUM"]

_MODES = ("up", "down", "both")
_MIN_SCALE = 1e-12  # absolute floor of an estimated scale: never divide by zero
_REL_SCALE = 1e-6  # floor of an estimated scale relative to |mean|: rounding is not noise
_sqrt = math.sqrt


class CUSUM:
    """Page's tabular CUSUM for a shift in the mean, in units of the in-control standard deviation.

    With ``zₜ = (xₜ - μ₀) / sigma``, the statistics ``S⁺ₜ = max(0, S⁺ₜ₋₁ + zₜ - k)`` and
    ``S⁻ₜ = max(0, S⁻ₜ₋₁ - zₜ - k)`` fire a drift when they exceed ``h``; the detector then
    resets. ``μ₀`` and ``sigma`` are given, or estimated from the first ``warm_start`` values after
    each reset. A batch runs the recursion in a compiled kernel; one value at a time (a Python
    number or a size-1 array) runs the same operations in plain Python, so both give the same
    alarms and state to the last bit. After a crossing the detector resets and goes on.

    Parameters
    ----------
    target
        In-control mean μ₀; ``None`` estimates it from the warm-up.
    scale
        In-control standard deviation sigma (> 0); ``None`` estimates it from the warm-up.
    k
        Allowance (reference value) in units of sigma (>= 0); half the shift to detect.
    threshold
        Decision interval ``h`` in units of sigma (> 0).
    warm_start
        Values used to estimate μ₀ and sigma when they are not given (>= 2).
    mode
        ``"up"``, ``"down"`` or ``"both"``.
    min_scale
        Absolute floor of an *estimated* sigma, in the units of the stream (>= 0; 0 = none).

    Notes
    -----
    **Scale floor.** An estimated sigma is at least ``max(min_scale, 1e-6·|mean|, 1e-12)``:
    a warm-up that is constant (to rounding) has no scale, and dividing by its rounding noise
    made every later change an alarm. A warm-up whose sum equals its sum of squares (every
    value 0 or 1: an error indicator) is floored further at the Jeffreys-smoothed Bernoulli
    sd ``sqrt(p(1 - p))``, ``p = (k + 0.5)/(n + 1)`` with ``k`` errors in ``n`` values: a
    warm-up without an error no longer gives sigma = 1e-12 and an alarm on the first error.
    This removes the degenerate case only. The Gaussian CUSUM itself is miscalibrated on
    sparse 0/1 streams (one error is ``sqrt((1 - p)/p)`` sigmas, a skewed jump); its false
    alarm rate there is far above Siegmund's figure below (see
    ``tests/detectors/test_cusum.py``); prefer DDM/HDDM_A for error indicators.

    **River.** River 0.26 has no CUSUM; detections are checked, index for index, against a
    plain loop of the recursion (``tests/detectors/test_streaming_river.py``).

    **Merging.** :meth:`merge` appends another detector's segment when ``target`` and ``scale``
    are fixed: a segment acts on a CUSUM value as ``S ↦ max(S + A, B)``, with ``A`` the sum of
    its increments and ``B`` its own CUSUM from zero, so the merge is exact for the state. A
    crossing that would have happened inside the other segment only because of this
    detector's starting value is not replayed; it fires on the next value that keeps ``S`` above
    ``h``.

    **False alarms.** For Gaussian noise, Siegmund's approximation of the in-control average
    run length of one side is ``ARL₀ ≈ (exp(2kb) - 2kb - 1) / (2k²)`` with ``b = h + 1.166``;
    the two sides combine as ``1/ARL₀ = 1/ARL₀⁺ + 1/ARL₀⁻`` and the rate per 100,000 values is
    ``1e5 / ARL₀`` (:meth:`false_alarms_per_100k`). The defaults (``k=0.5, h=10``) give
    ``ARL₀ ≈ 70,700``, 1.4 per 100,000 values; 1.55 were measured on N(0, 1) with ``target``
    and ``scale`` given and 1.35 with them estimated from ``warm_start=100`` values (and 214
    against a predicted 213 with ``h=5``; ``tests/detectors/test_streaming_false_alarms.py``).

    **After resets** the rate is higher than the long-run one, because every restart
    re-estimates the scale from ``warm_start`` values (fresh streams, a new detector after
    every drift; ``benchmarks/detectors_rates.py``): with the defaults 4.2, 2.6 and 1.3 per
    100,000 on N(0, 1) at horizons of 20k, 200k and 2M values, 41 to 56 on Student-t(3) noise,
    and tens on sparse 0/1 streams, where one error is a jump of ``sqrt((1-p)/p)`` standard
    deviations: a Gaussian CUSUM is the wrong tool there (use HDDM_A or DDM). The daemon's
    defaults (``threshold`` 50, or 70 on 0/1 errors) hold 1 per 100,000
    (``benchmarks/daemon_rates.py``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1.0, 1, 2000)])
    >>> alarms = CUSUM(target=0.0, scale=1.0).update(x)
    >>> alarms[0].index, alarms[0].kind
    (2024, 'drift')
    """

    KIND = "driftd.detectors.CUSUM"

    def __init__(
        self,
        target: float | None = None,
        scale: float | None = None,
        k: float = 0.5,
        threshold: float = 10.0,
        warm_start: int = 100,
        mode: Literal["up", "down", "both"] = "both",
        min_scale: float = 0.0,
    ) -> None:
        if target is not None:
            check("target", target, math.isfinite(target), "a finite number or None")
        if scale is not None:
            check("scale", scale, scale > 0 and math.isfinite(scale), "a number > 0 or None")
        check("k", k, k >= 0 and math.isfinite(k), "a number >= 0")
        check("threshold", threshold, threshold > 0 and math.isfinite(threshold), "> 0")
        check("warm_start", warm_start, warm_start >= 2, "an integer >= 2")
        check("mode", mode, mode in _MODES, f"one of {_MODES}")
        ok = min_scale >= 0 and math.isfinite(min_scale)
        check("min_scale", min_scale, ok, "a finite number >= 0")
        self.min_scale = float(min_scale)
        self._up, self._down = mode != "down", mode != "up"
        self.target, self.scale = target, scale
        self.k, self.threshold = float(k), float(threshold)
        self.warm_start, self.mode = int(warm_start), mode
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        # plain floats, so that one value at a time needs no numpy
        self._wn, self._ws, self._wss = 0.0, 0.0, 0.0  # warm-up count, sum, sum of squares
        self._mu = self.target
        self._sd = self.scale
        self._sp, self._sm = 0.0, 0.0  # S⁺, S⁻
        self._ap, self._am = 0.0, 0.0  # sums of the increments since the last reset (for merge)
        self._fresh = True  # no drift since construction or reset()

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch in order; return its drift alarms (index = position in the batch).

        One value (a Python number or a size-1 array) takes a plain-Python path with the
        kernel's operations in the kernel's order: same alarms, same state.
        """
        x = values if type(values) is float else as_scalar(values)
        if x is None:
            return scan("CUSUM", as_float_array(values).reshape(-1), self._advance)
        mu, sd = self._mu, self._sd
        if mu is None or sd is None:
            self._wn += 1.0
            self._ws += x
            self._wss += x * x
            if self._wn >= self.warm_start:
                self._end_warm_up()
            return []
        z = (x - mu) / sd
        k = self.k
        ip = z - k
        im = -z - k
        sp = self._sp + ip
        sp = sp if sp > 0.0 else 0.0
        sm = self._sm + im
        sm = sm if sm > 0.0 else 0.0
        a = sp if self._up else 0.0
        b = sm if self._down else 0.0
        stat = a if a >= b else b
        self._sp, self._sm = sp, sm
        self._ap += ip
        self._am += im
        if stat > self.threshold:
            self.reset()  # ``statistic`` read just before this equals ``stat``
            self._fresh = False
            return [Alarm("CUSUM", 0, stat, self.threshold, "drift")]
        return []

    @property
    def statistic(self) -> float:
        """The larger of the enabled one-sided sums ``S⁺``, ``S⁻`` now, in units of sigma,
        compared with ``threshold`` (a drift when above); NaN during the warm-up."""
        if self._mu is None or self._sd is None:
            return math.nan
        a = self._sp if self._up else 0.0
        b = self._sm if self._down else 0.0
        return a if a >= b else b

    def _end_warm_up(self) -> None:
        """Estimate μ₀ and sigma (floored, see Notes) from the warm-up sums."""
        n, s, ss = self._wn, self._ws, self._wss
        mean = s / n
        if self.target is None:
            self._mu = mean
        if self.scale is None:
            sd = _sqrt(max(ss - n * mean * mean, 0.0) / (n - 1))
            self._sd = max(sd, self.scale_floor(n, s, ss))

    def scale_floor(self, n: float, total: float, total_sq: float) -> float:
        """The floor put under sigma estimated from ``n`` warm-up values with these sums."""
        floor = max(self.min_scale, _REL_SCALE * abs(total / n), _MIN_SCALE)
        if total == total_sq and 0.0 <= total <= n:  # every value 0 or 1
            p = (total + 0.5) / (n + 1.0)
            floor = max(floor, _sqrt(p * (1.0 - p)))
        return floor

    def _advance(self, x: F64) -> tuple[int, list[Hit]]:
        used = 0
        if self._mu is None or self._sd is None:
            used = min(self.warm_start - int(self._wn), x.size)
            head = x[:used]
            # sequential sums (cumsum), as one value at a time adds them
            self._ws = float(np.cumsum(np.concatenate(([self._ws], head)))[-1])
            self._wss = float(np.cumsum(np.concatenate(([self._wss], head * head)))[-1])
            self._wn += used
            if self._wn < self.warm_start:
                return used, []
            self._end_warm_up()
        assert self._mu is not None and self._sd is not None
        if used == x.size:
            return used, []
        st = np.array([self._sp, self._sm, self._ap, self._am])
        j, stat = kern.cusum_kernel(
            x[used:], self._mu, self._sd, self.k, self.threshold, self._up, self._down, st
        )
        if j >= 0:
            self.reset()
            self._fresh = False
            return used + j + 1, [(used + j, float(stat), self.threshold, "drift")]
        self._sp, self._sm, self._ap, self._am = (float(v) for v in st)
        return x.size, []

    def merge(self, other: CUSUM) -> None:
        """Append ``other``'s segment (seen after this detector's) to this detector's state."""
        same = (self.target, self.scale, self.k, self.mode) == (
            other.target,
            other.scale,
            other.k,
            other.mode,
        )
        if not same or self.target is None or self.scale is None:
            raise ValueError("merge needs two CUSUMs with the same fixed target, scale, k, mode")
        if not other._fresh:  # it drifted and reset: what came before no longer counts
            self._sp, self._sm, self._ap, self._am = other._sp, other._sm, other._ap, other._am
            self._fresh = False
            return
        self._sp = max(self._sp + other._ap, other._sp)
        self._sm = max(self._sm + other._am, other._sm)
        self._ap += other._ap
        self._am += other._am

    def false_alarms_per_100k(self) -> float:
        """Siegmund's approximate false alarms per 100,000 in-control Gaussian values."""
        b = self.threshold + 1.166
        if self.k == 0:
            arl = b * b
        else:
            arl = (math.exp(2 * self.k * b) - 2 * self.k * b - 1) / (2 * self.k * self.k)
        sides = 2 if self.mode == "both" else 1
        return 1e5 * sides / arl

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and arrays in a versioned envelope."""
        mu = math.nan if self._mu is None else self._mu
        sd = math.nan if self._sd is None else self._sd
        return envelope(
            self.KIND,
            1,
            {
                "warm": np.array([self._wn, self._ws, self._wss]),
                "mu": mu,
                "sd": sd,
                "s": np.array([self._sp, self._sm]),
                "a": np.array([self._ap, self._am]),
                "fresh": int(self._fresh),
            },
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._wn, self._ws, self._wss = (float(v) for v in np.asarray(s["warm"], np.float64))
        self._mu = None if math.isnan(s["mu"]) else float(s["mu"])
        self._sd = None if math.isnan(s["sd"]) else float(s["sd"])
        self._sp, self._sm = (float(v) for v in np.asarray(s["s"], np.float64))
        self._ap, self._am = (float(v) for v in np.asarray(s["a"], np.float64))
        self._fresh = bool(s["fresh"])
