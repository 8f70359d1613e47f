"""DDM and EDDM on a stream of error indicators (1 = error), vectorised over each batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.detectors._kernels import F64, Hit, check, last_true_index, scan
from driftd.detectors.base import Alarm, as_float_array, as_scalar, envelope, open_envelope

__all__ = ["DDM", "EDDM"]

_sqrt = math.sqrt


def _entries(zone: npt.NDArray[np.bool_], was_in: bool) -> npt.NDArray[np.intp]:
    """Indices where ``zone`` switches from False to True (``was_in``: the state before)."""
    if zone.size == 0:
        return np.flatnonzero(zone)
    before = np.concatenate(([was_in], zone[:-1]))
    return np.flatnonzero(zone & ~before)


class DDM:
    """Drift Detection Method (Gama et al., 2004), as River's ``drift.binary.DDM``.

    With ``pₜ`` the error rate since the last reset and ``sₜ = sqrt(pₜ(1 - pₜ)/nₜ)``, the pair
    ``(p_min, s_min)`` is taken where ``pₜ + sₜ`` was smallest (after ``warm_start`` values); a
    warning fires when ``pₜ + sₜ > p_min + w·s_min`` and a drift when
    ``pₜ + sₜ > p_min + d·s_min``, after which the detector resets. A batch is processed with
    cumulative sums and a running minimum; the first drift is located, the detector resets
    there and the rest of the batch follows. One value at a time (a Python number or a size-1
    array) takes a plain-Python path with the same operations: same alarms, same state.

    Parameters
    ----------
    warm_start
        Values after each reset before warnings or drifts may fire (>= 0).
    warning_threshold
        ``w`` in units of ``s_min`` (> 0).
    drift_threshold
        ``d`` in units of ``s_min`` (>= ``warning_threshold``).

    Notes
    -----
    **Warnings.** River's ``warning_detected`` is a level; driftd emits one ``"warning"`` alarm
    when the detector enters the warning zone (and again after it has left it).

    **River.** Drift and warning-entry indices are River 0.26's, index for index, on the seeded
    streams of ``tests/detectors/test_streaming_river.py``. The error rate is a count divided
    by ``n`` rather than River's incremental mean, which can differ in the last bit.

    **Merging.** Not mergeable: ``(p_min, s_min)`` depend on the order of the whole prefix.

    **False alarms.** ``d = 3`` is a one-sided normal bound, ``P(Z > 3) = 0.13%``, per test.
    The tests are strongly dependent and the minimum is selected, so this is not a per-value
    rate; the rate is empirical. On stationary Bernoulli(0.1) streams with the defaults, one
    drift in 4,000,000 values was measured (0.025 per 100,000; ``test_streaming_false_alarms.py``
    asserts at most 0.1 per 100,000).
    That is a long-run figure. **After resets** (fresh streams, a new detector after every
    drift; ``benchmarks/detectors_rates.py``) the start-up is what fires, because a warm-up of
    30 values with no error makes the first error a drift: 14.8, 7.9 and 3.8 per 100,000 on
    Bernoulli 0.02, 0.05 and 0.1 at a horizon of 20k values, 0.4 to 1.8 at 200k. No
    ``drift_threshold`` fixes it; a longer ``warm_start`` does (the daemon uses 1,000 and 3.5:
    at most 1 per 100,000, ``benchmarks/daemon_rates.py``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> p = np.where(np.arange(4000) < 2000, 0.1, 0.3)
    >>> x = (rng.random(4000) < p).astype(float)
    >>> [a.index for a in DDM().update(x) if a.kind == "drift"]
    [2226]
    """

    KIND = "driftd.detectors.DDM"

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        check("warm_start", warm_start, warm_start >= 0, "an integer >= 0")
        check("warning_threshold", warning_threshold, warning_threshold > 0, "a number > 0")
        check(
            "drift_threshold",
            drift_threshold,
            drift_threshold >= warning_threshold,
            f"a number >= warning_threshold ({warning_threshold})",
        )
        self.warm_start = int(warm_start)
        self.warning_threshold = float(warning_threshold)
        self.drift_threshold = float(drift_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        self._n = 0
        self._errors = 0.0
        self._p_min = math.nan
        self._s_min = math.nan
        self._ps_min = math.inf
        self._warning = False

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch of 0/1 values in order; return its warning and drift alarms."""
        x = values if type(values) is float else as_scalar(values)
        if x is None or x - x != 0.0 or self._errors != self._errors:  # a batch, or inf/nan
            return scan("DDM", as_float_array(values).reshape(-1), self._advance)
        n = self._n + 1
        errors = self._errors + x
        p = errors / n
        q = p * (1 - p) / n
        if q < 0.0:  # a value outside [0, 1]: numpy's nan
            return scan("DDM", as_float_array(values).reshape(-1), self._advance)
        self._n, self._errors = n, errors
        if n <= self.warm_start:
            self._warning = False
            return []
        s = _sqrt(q)
        ps = p + s
        if ps <= self._ps_min:  # River keeps the latest of equal minima
            self._p_min, self._s_min, self._ps_min = p, s, ps
        p_min, s_min = self._p_min, self._s_min
        thr = p_min + self.drift_threshold * s_min
        if ps > thr:
            self.reset()
            return [Alarm("DDM", 0, ps, thr, "drift")]
        thr = p_min + self.warning_threshold * s_min
        if ps > thr:
            if self._warning:
                return []
            self._warning = True
            return [Alarm("DDM", 0, ps, thr, "warning")]
        self._warning = False
        return []

    @property
    def statistic(self) -> float:
        """``pₜ + sₜ`` of the values since the last reset, compared with ``threshold`` (a drift
        when above); NaN until more than ``warm_start`` values."""
        n = self._n
        if n <= self.warm_start or n == 0:
            return math.nan
        p = self._errors / n
        return p + _sqrt(p * (1 - p) / n)

    @property
    def threshold(self) -> float:
        """The drift level ``p_min + d·s_min`` now; NaN until more than ``warm_start`` values."""
        if self._n <= self.warm_start:
            return math.nan
        return self._p_min + self.drift_threshold * self._s_min

    def _advance(self, x: F64) -> tuple[int, list[Hit]]:
        n = self._n + 1.0 + np.arange(x.size, dtype=np.float64)
        errors = np.cumsum(np.concatenate(([self._errors], x)))[1:]
        p = errors / n
        s = np.sqrt(p * (1 - p) / n)
        ps = p + s
        active = n > self.warm_start
        ps_a = np.where(active, ps, np.inf)
        prev_min = np.minimum.accumulate(np.concatenate(([self._ps_min], ps_a)))[:-1]
        new_min = active & (ps_a <= prev_min)  # River keeps the latest of equal minima
        last = last_true_index(new_min)
        p_min = np.where(last >= 0, p[last], self._p_min)
        s_min = np.where(last >= 0, s[last], self._s_min)
        with np.errstate(invalid="ignore"):
            drift = active & (ps > p_min + self.drift_threshold * s_min)
            warning = active & (ps > p_min + self.warning_threshold * s_min) & ~drift
        end = int(np.argmax(drift)) if drift.any() else x.size
        hits: list[Hit] = [
            (int(i), float(ps[i]), float(p_min[i] + self.warning_threshold * s_min[i]), "warning")
            for i in _entries(warning[:end], self._warning)
        ]
        if end < x.size:
            thr = float(p_min[end] + self.drift_threshold * s_min[end])
            hits.append((end, float(ps[end]), thr, "drift"))
            self.reset()
            return end + 1, hits
        self._n += x.size
        self._errors = float(errors[-1])
        self._p_min, self._s_min = float(p_min[-1]), float(s_min[-1])
        self._ps_min = float(min(self._ps_min, ps_a.min()))
        self._warning = bool(warning[-1])
        return x.size, hits

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers in a versioned envelope."""
        state = {
            "n": self._n,
            "errors": self._errors,
            "p_min": self._p_min,
            "s_min": self._s_min,
            "ps_min": self._ps_min,
            "warning": int(self._warning),
        }
        return envelope(self.KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._n, self._errors = int(s["n"]), float(s["errors"])
        self._p_min, self._s_min = float(s["p_min"]), float(s["s_min"])
        self._ps_min, self._warning = float(s["ps_min"]), bool(s["warning"])


class EDDM:
    """Early Drift Detection Method (Baena-García et al., 2006), as River's ``EDDM``.

    EDDM follows the distances between consecutive errors: with ``p'`` their mean and ``s'``
    their standard deviation, it keeps the maximum of ``p' + 2s'`` and, once more than
    ``warm_start`` errors have been seen, fires a warning when ``(p' + 2s') / max < alpha``
    and a drift when it is ``< beta``; the detector then resets. A batch is processed over its
    error positions with cumulative sums and a running maximum. One value at a time (a Python
    number or a size-1 array) takes a plain-Python path: same alarms, same state.

    Parameters
    ----------
    warm_start
        Values and errors after each reset before the test runs (>= 0).
    alpha
        Warning level, in (0, 1].
    beta
        Drift level, in (0, ``alpha``].

    Notes
    -----
    **Warnings.** One ``"warning"`` alarm when the level drops below ``alpha`` (River's level
    flag, which is only re-evaluated on errors, going from False to True).

    **River.** Drift and warning-entry indices are River 0.26's, index for index, on the seeded
    streams of ``tests/detectors/test_streaming_river.py``. Values equal to 1 are errors, as in
    River; the mean and variance of the (integer) distances are exact sums here.

    **Merging.** Not mergeable: the maximum depends on the order of the whole prefix.

    **False alarms.** No closed form: ``alpha`` and ``beta`` are ratios, not confidence levels.
    The rate is empirical: on stationary Bernoulli(0.1) streams with the defaults, 1.4 drifts
    per 100,000 values were measured (57 in 4,000,000; ``test_streaming_false_alarms.py``).
    **After resets** (fresh streams, a new detector after every drift;
    ``benchmarks/detectors_rates.py``) it is far higher: 42 to 131 per 100,000 on Bernoulli 0.02
    to 0.1 at a horizon of 20k values, 21 to 27 at 200k, 2 to 3 at 2M. The daemon uses
    ``warm_start=1000, beta=0.8``: at most 1 per 100,000 (``benchmarks/daemon_rates.py``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> p = np.where(np.arange(4000) < 2000, 0.1, 0.3)
    >>> x = (rng.random(4000) < p).astype(float)
    >>> [a.index for a in EDDM().update(x) if a.kind == "drift"][:3]
    [2226, 2313, 2405]
    """

    KIND = "driftd.detectors.EDDM"

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        check("warm_start", warm_start, warm_start >= 0, "an integer >= 0")
        check("alpha", alpha, 0 < alpha <= 1, "a number in (0, 1]")
        check("beta", beta, 0 < beta <= alpha, f"a number in (0, alpha={alpha}]")
        self.warm_start, self.alpha, self.beta = int(warm_start), float(alpha), float(beta)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        self._n = 0
        self._last_error = 0
        self._k, self._s1, self._s2 = 0.0, 0.0, 0.0  # errors, sum and sum of squares of distances
        self._max = -1.0
        self._warning = False

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch of 0/1 values in order; return its warning and drift alarms."""
        x = values if type(values) is float else as_scalar(values)
        if x is None:
            return scan("EDDM", as_float_array(values).reshape(-1), self._advance)
        if x != 1.0:
            self._n += 1
            return []
        n_at = self._n + 1
        dist = float(n_at - self._last_error)
        k, s1, s2 = self._k + 1.0, self._s1 + dist, self._s2 + dist * dist
        mean = s1 / k
        var = (s2 - s1 * mean) / (k - 1) if k > 1 else 0.0
        p2s = mean + 2 * _sqrt(var if var > 0.0 else 0.0)
        active = n_at > self.warm_start
        prev = self._max
        self._n = self._last_error = n_at
        self._k, self._s1, self._s2 = k, s1, s2
        if active and p2s > prev:
            self._max = p2s
        if not (active and p2s <= prev and k > self.warm_start):
            return []
        level = p2s / prev
        if level < self.beta:
            self.reset()
            return [Alarm("EDDM", 0, level, self.beta, "drift")]
        if level < self.alpha:
            if self._warning:
                return []
            self._warning = True
            return [Alarm("EDDM", 0, level, self.alpha, "warning")]
        self._warning = False
        return []

    @property
    def statistic(self) -> float:
        """The level ``(p' + 2s') / max`` at the last error, compared with ``threshold``
        (``beta``; a drift when below); 1 when that error set a new maximum, NaN until more
        than ``warm_start`` errors since the last reset. Only errors move it."""
        k = self._k
        if k <= self.warm_start or self._max <= 0.0:
            return math.nan
        s1 = self._s1
        mean = s1 / k
        var = (self._s2 - s1 * mean) / (k - 1) if k > 1 else 0.0
        return (mean + 2 * _sqrt(var if var > 0.0 else 0.0)) / self._max

    @property
    def threshold(self) -> float:
        """``beta``: the drift level the statistic falls below."""
        return self.beta

    def _advance(self, x: F64) -> tuple[int, list[Hit]]:
        pos = np.flatnonzero(x == 1)
        if pos.size == 0:
            self._n += x.size
            return x.size, []
        n_at = self._n + 1 + pos  # River's sample count at each error
        dist = np.diff(np.concatenate(([self._last_error], n_at))).astype(np.float64)
        k = self._k + np.arange(1, pos.size + 1, dtype=np.float64)
        s1 = self._s1 + np.cumsum(dist)
        s2 = self._s2 + np.cumsum(dist * dist)
        mean = s1 / k
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(k > 1, (s2 - s1 * mean) / (k - 1), 0.0)
        p2s = mean + 2 * np.sqrt(np.maximum(var, 0.0))
        active = n_at > self.warm_start
        p2s_a = np.where(active, p2s, -np.inf)
        prev_max = np.maximum.accumulate(np.concatenate(([self._max], p2s_a)))[:-1]
        tested = active & (p2s_a <= prev_max) & (k > self.warm_start)
        level = p2s / prev_max
        drift = tested & (level < self.beta)
        end = int(np.argmax(drift)) if drift.any() else pos.size
        # the warning flag only changes on tested errors; forward-fill it between them
        last = last_true_index(tested[:end])
        zone = np.where(last >= 0, level[np.maximum(last, 0)] < self.alpha, self._warning)
        hits: list[Hit] = [
            (int(pos[i]), float(level[i]), self.alpha, "warning")
            for i in _entries(zone, self._warning)
        ]
        if end < pos.size:
            hits.append((int(pos[end]), float(level[end]), self.beta, "drift"))
            self.reset()
            return int(pos[end]) + 1, hits
        self._n += x.size
        self._last_error = int(n_at[-1])
        self._k, self._s1, self._s2 = float(k[-1]), float(s1[-1]), float(s2[-1])
        self._max = float(max(self._max, p2s_a.max()))
        self._warning = bool(zone[-1]) if zone.size else self._warning
        return x.size, hits

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and arrays in a versioned envelope."""
        state = {
            "n": self._n,
            "last_error": self._last_error,
            "sums": np.array([self._k, self._s1, self._s2]),
            "max": self._max,
            "warning": int(self._warning),
        }
        return envelope(self.KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._n, self._last_error = int(s["n"]), int(s["last_error"])
        self._k, self._s1, self._s2 = (float(v) for v in np.asarray(s["sums"], np.float64))
        self._max, self._warning = float(s["max"]), bool(s["warning"])
