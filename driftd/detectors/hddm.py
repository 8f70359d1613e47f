"""HDDM_A (vectorised) and HDDM_W (compiled kernel): Hoeffding/McDiarmid drift detection."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors import _kernels as k
from driftd.detectors._kernels import F64, Hit, check, last_true_index, scan
from driftd.detectors.base import Alarm, as_float_array, as_scalar, envelope, open_envelope

__all__ = ["HDDM_A", "HDDM_W"]

_BUFFER = 4096  # alarms a kernel call may report before control returns to Python
_sqrt = math.sqrt


def _entries(zone: npt.NDArray[np.bool_], was_in: bool) -> npt.NDArray[np.intp]:
    if zone.size == 0:
        return np.flatnonzero(zone)
    return np.flatnonzero(zone & ~np.concatenate(([was_in], zone[:-1])))


def _check_confidences(drift: float, warning: float) -> None:
    check("drift_confidence", drift, 0 < drift < 1, "a number in (0, 1)")
    check("warning_confidence", warning, drift <= warning < 1, f"in [drift_confidence={drift}, 1)")


def _pick(sides: list[tuple[float, float] | None], strict: bool) -> tuple[float, float]:
    """The (statistic, bound) an HDDM reports: the first side that fires (above its bound, or
    ``strict=False`` at or above it), as the alarm takes it, else the defined side nearest
    its bound (the first of equals); NaNs when no side is defined."""
    best: tuple[float, float] | None = None
    for side in sides:
        if side is None:
            continue
        fires = side[0] > side[1] or (not strict and side[0] == side[1])
        if fires and side[1] > 0.0:  # a bound of 0: nothing after the cut point, no test
            return side
        if best is None or side[0] - side[1] > best[0] - best[1]:
            best = side
    return best if best is not None else (math.nan, math.nan)


class HDDM_A:
    """Drift detection with Hoeffding's bound on averages (Frías-Blanco et al., 2015).

    The cut point is the prefix whose mean plus its Hoeffding bound is smallest; a drift fires
    when the mean since the last reset exceeds the cut point's mean by more than the bound for
    the two sample sizes at ``drift_confidence`` (a warning at ``warning_confidence``), and the
    detector then resets. With ``two_sided_test`` a decrease is tested too. A batch is
    processed with cumulative sums and running extremes (the cut points); the first drift is
    located, the detector resets there and the rest of the batch follows. One value at a time
    (a Python number or a size-1 array) takes a plain-Python path with the same operations:
    same alarms, same state, to the last bit.

    Parameters
    ----------
    drift_confidence
        Significance of the drift test, in (0, 1).
    warning_confidence
        Significance of the warning test, in [``drift_confidence``, 1).
    two_sided_test
        Also detect decreases of the mean.

    Notes
    -----
    **Warnings.** One ``"warning"`` alarm on entering the warning zone (River's level flag
    going from False to True).

    **River.** Drift and warning-entry indices are River 0.26's ``drift.binary.HDDM_A``, index
    for index, on the seeded streams of ``tests/detectors/test_streaming_river.py``. Means are
    sums divided by counts instead of River's incremental means (last-bit differences).

    **Merging.** Not mergeable: the cut point depends on the order of the whole prefix.

    **False alarms.** For values in [0, 1] Hoeffding's inequality bounds the probability that a
    given comparison fires under no change by ``drift_confidence``; the comparisons are many
    and dependent, so the rate per value is below that bound but has no closed form. It is
    empirical: on stationary Bernoulli(0.1) streams with the defaults, no drift fired in
    4,000,000 values (``test_streaming_false_alarms.py`` asserts at most 0.1 per 100,000).
    After resets (fresh streams of 20k, 200k or 2M values, a new detector after every drift;
    ``benchmarks/detectors_rates.py``): at most 0.17 per 100,000 on Bernoulli 0.02 to 0.1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> p = np.where(np.arange(4000) < 2000, 0.1, 0.3)
    >>> x = (rng.random(4000) < p).astype(float)
    >>> [a.index for a in HDDM_A().update(x) if a.kind == "drift"]
    [2071]
    """

    KIND = "driftd.detectors.HDDM_A"

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided_test: bool = False,
    ) -> None:
        _check_confidences(drift_confidence, warning_confidence)
        self.drift_confidence = float(drift_confidence)
        self.warning_confidence = float(warning_confidence)
        self.two_sided_test = bool(two_sided_test)
        self._log_d = math.log(1.0 / self.drift_confidence)
        self._log2_d = math.log(2.0 / self.drift_confidence)
        self._log2_w = math.log(2.0 / self.warning_confidence)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        # plain floats: count and sum of the stream; count, sum, bound-adjusted mean of the
        # low and of the high cut point
        self._zn, self._zs = 0.0, 0.0
        self._lo_n, self._lo_s, self._lo_e = 0.0, 0.0, math.inf
        self._hi_n, self._hi_s, self._hi_e = 0.0, 0.0, -math.inf
        self._warning = False

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch of values in [0, 1] in order; return its warning and drift alarms."""
        x = values if type(values) is float else as_scalar(values)
        if x is None or x - x != 0.0 or self._zs != self._zs:  # a batch, or inf/nan: numpy's way
            return scan("HDDM_A", as_float_array(values).reshape(-1), self._advance)
        n = self._zn + 1.0
        sums = self._zs + x
        mean = sums / n
        eps = _sqrt(1.0 / (2 * n) * self._log_d)
        g = mean + eps
        if g <= self._lo_e:  # River keeps the latest of equal extremes
            self._lo_n, self._lo_s, self._lo_e = n, sums, g
        cn = self._lo_n
        stat = up = mean - self._lo_s / cn
        m = (n - cn) / cn * (1.0 / n)
        thr = _sqrt(m / 2 * self._log2_d)
        drift = cn != n and up >= thr
        warn = not drift and cn != n and up >= _sqrt(m / 2 * self._log2_w)
        if self.two_sided_test:
            g = mean - eps
            if g >= self._hi_e:
                self._hi_n, self._hi_s, self._hi_e = n, sums, g
            cn = self._hi_n
            down = self._hi_s / cn - mean
            m = (n - cn) / cn * (1.0 / n)
            thr2 = _sqrt(m / 2 * self._log2_d)
            d2 = cn != n and down >= thr2
            if not drift:
                stat, thr = down, thr2
                drift = d2
            warn = warn or (not d2 and cn != n and down >= _sqrt(m / 2 * self._log2_w))
        self._zn, self._zs = n, sums
        if drift:
            self.reset()  # ``statistic``/``threshold`` read just before this equal these
            return [Alarm("HDDM_A", 0, stat, thr, "drift")]
        if not warn:
            self._warning = False
            return []
        if self._warning:
            return []
        self._warning = True
        return [Alarm("HDDM_A", 0, stat, thr, "warning")]

    def _side(self, cn: float, cs: float, up: bool) -> tuple[float, float] | None:
        """One side's compared difference and drift bound now (both 0 while the cut point is
        the newest value: no drift then); None before any value."""
        n = self._zn
        if n == 0.0:
            return None
        if cn == n:
            return 0.0, 0.0
        mean = self._zs / n
        diff = mean - cs / cn if up else cs / cn - mean
        m = (n - cn) / cn * (1.0 / n)
        return diff, _sqrt(m / 2 * self._log2_d)

    @property
    def statistic(self) -> float:
        """The mean's difference from the cut point's, compared with ``threshold`` (a drift when
        at or above, with a value after the cut point): the upward side, or with
        ``two_sided_test`` the side that fires (upward first, as the alarm), else the one
        nearer its bound. 0 (and ``threshold`` 0) while the cut point is the newest value, when
        no drift can fire; NaN before any value."""
        return _pick(self._sides(), strict=False)[0]

    @property
    def threshold(self) -> float:
        """Hoeffding's bound for the two sample sizes at ``drift_confidence``, for the side
        ``statistic`` reports; NaN where that is."""
        return _pick(self._sides(), strict=False)[1]

    def _sides(self) -> list[tuple[float, float] | None]:
        up = self._side(self._lo_n, self._lo_s, up=True)
        if not self.two_sided_test:
            return [up]
        return [up, self._side(self._hi_n, self._hi_s, up=False)]

    def _cut(self, g: F64, n: F64, sums: F64, c: F64, low: bool) -> tuple[F64, F64, F64]:
        """Count and sum of the cut point in force at each position, and its running extreme."""
        acc = np.minimum if low else np.maximum
        prev = acc.accumulate(np.concatenate(([c[2]], g)))[:-1]
        new = g <= prev if low else g >= prev  # River keeps the latest of equal extremes
        last = last_true_index(new)
        cn = np.where(last >= 0, n[np.maximum(last, 0)], c[0])
        cs = np.where(last >= 0, sums[np.maximum(last, 0)], c[1])
        return cn, cs, acc(prev, g)

    def _test(self, diff: F64, n: F64, cn: F64, conf: float) -> tuple[npt.NDArray[np.bool_], F64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            m = (n - cn) / cn * (1.0 / n)
            eps = np.sqrt(m / 2 * math.log(2.0 / conf))
        return (cn != n) & (diff >= eps), eps

    def _advance(self, x: F64) -> tuple[int, list[Hit]]:
        n = self._zn + 1.0 + np.arange(x.size, dtype=np.float64)
        sums = np.cumsum(np.concatenate(([self._zs], x)))[1:]
        mean = sums / n
        eps = np.sqrt(1.0 / (2 * n) * self._log_d)
        lo = np.array([self._lo_n, self._lo_s, self._lo_e])
        lo_n, lo_s, lo_ext = self._cut(mean + eps, n, sums, lo, low=True)
        up = mean - lo_s / lo_n
        drift, thr = self._test(up, n, lo_n, self.drift_confidence)
        warn = ~drift & self._test(up, n, lo_n, self.warning_confidence)[0]
        stat = up
        if self.two_sided_test:
            hi = np.array([self._hi_n, self._hi_s, self._hi_e])
            hi_n, hi_s, hi_ext = self._cut(mean - eps, n, sums, hi, low=False)
            down = hi_s / hi_n - mean
            d2, thr2 = self._test(down, n, hi_n, self.drift_confidence)
            w2 = ~d2 & self._test(down, n, hi_n, self.warning_confidence)[0]
            stat, thr = np.where(drift, up, down), np.where(drift, thr, thr2)
            drift, warn = drift | d2, warn | w2
        end = int(np.argmax(drift)) if drift.any() else x.size
        zone = warn[:end] & ~drift[:end]
        hits: list[Hit] = [
            (int(i), float(stat[i]), float(thr[i]), "warning")
            for i in _entries(zone, self._warning)
        ]
        if end < x.size:
            hits.append((end, float(stat[end]), float(thr[end]), "drift"))
            self.reset()
            return end + 1, hits
        self._zn, self._zs = float(n[-1]), float(sums[-1])
        self._lo_n, self._lo_s, self._lo_e = float(lo_n[-1]), float(lo_s[-1]), float(lo_ext[-1])
        if self.two_sided_test:
            self._hi_n, self._hi_s = float(hi_n[-1]), float(hi_s[-1])
            self._hi_e = float(hi_ext[-1])
        self._warning = bool(zone[-1])
        return x.size, hits

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays in a versioned envelope."""
        state = {
            "z": np.array([self._zn, self._zs]),
            "lo": np.array([self._lo_n, self._lo_s, self._lo_e]),
            "hi": np.array([self._hi_n, self._hi_s, self._hi_e]),
        }
        return envelope(self.KIND, 1, {**state, "warning": int(self._warning)})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._zn, self._zs = (float(v) for v in np.asarray(s["z"], np.float64))
        self._lo_n, self._lo_s, self._lo_e = (float(v) for v in np.asarray(s["lo"], np.float64))
        self._hi_n, self._hi_s, self._hi_e = (float(v) for v in np.asarray(s["hi"], np.float64))
        self._warning = bool(s["warning"])


class HDDM_W:
    """Drift detection with McDiarmid's bound on weighted (EWMA) means (Frías-Blanco, 2015).

    Like :class:`HDDM_A` but the means are exponentially weighted with ``lambda_val``, so
    old values fade; the cut point and the test use McDiarmid's bound on weighted sums. The
    recursion is sequential (each cut resets an EWMA), so a batch runs through a compiled
    numba kernel over the detector's plain state array; one value at a time (a Python number
    or a size-1 array) runs the kernel's operations in plain Python: same alarms, same state.

    Parameters
    ----------
    drift_confidence
        Significance of the drift test, in (0, 1).
    warning_confidence
        Significance of the warning test, in [``drift_confidence``, 1).
    lambda_val
        Weight of the newest value in the EWMA, in (0, 1].
    two_sided_test
        Also detect decreases of the mean.

    Notes
    -----
    **Warnings.** One ``"warning"`` alarm on entering the warning zone.

    **River.** Same operations in the same order as River 0.26's ``drift.binary.HDDM_W``;
    detections are River's, index for index (``tests/detectors/test_streaming_river.py``).

    **Merging.** Not mergeable: the cut points depend on the order of the whole prefix.

    **False alarms.** McDiarmid's inequality bounds each comparison's false-alarm probability
    by ``drift_confidence`` for values in [0, 1]; the comparisons are dependent, so the rate
    is empirical: on stationary Bernoulli(0.1) streams with the defaults, no drift fired in
    4,000,000 values (``test_streaming_false_alarms.py`` asserts at most 0.1 per 100,000).
    After resets (fresh streams of 20k, 200k or 2M values, a new detector after every drift;
    ``benchmarks/detectors_rates.py``): at most 0.03 per 100,000 on Bernoulli 0.02 to 0.1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> p = np.where(np.arange(4000) < 2000, 0.1, 0.3)
    >>> x = (rng.random(4000) < p).astype(float)
    >>> [a.index for a in HDDM_W().update(x) if a.kind == "drift"]
    [2075]
    """

    KIND = "driftd.detectors.HDDM_W"

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        lambda_val: float = 0.05,
        two_sided_test: bool = False,
    ) -> None:
        _check_confidences(drift_confidence, warning_confidence)
        check("lambda_val", lambda_val, 0 < lambda_val <= 1, "a number in (0, 1]")
        self.drift_confidence = float(drift_confidence)
        self.warning_confidence = float(warning_confidence)
        self.lambda_val = float(lambda_val)
        self.two_sided_test = bool(two_sided_test)
        self._log_d = math.log(1.0 / self.drift_confidence)
        self._log_w = math.log(1.0 / self.warning_confidence)
        self._keep = (1.0 - self.lambda_val) ** 2  # the kernel's (1 - λ)**2, the same float
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        s = np.zeros(k.HDDMW_SIZE)
        k.hddmw_reset(s)
        self._s: list[float] = s.tolist()  # plain floats; the kernel gets an array copy

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch of values in [0, 1] in order; return its warning and drift alarms."""
        x1 = values if type(values) is float else as_scalar(values)
        if x1 is not None:
            return self._one(x1)
        return self._batch(values)

    def _one(self, v: float) -> list[Alarm]:
        """``hddmw_kernel`` for one value, operation for operation, on the plain-float state."""
        s, lam, keep, log_d = self._s, self.lambda_val, self._keep, self._log_d
        lam2 = lam * lam
        # _sample_update(s, 0, v, lam)
        s[0] = v if s[1] == 0.0 else lam * v + (1.0 - lam) * s[0]
        s[1] = 1.0
        s[2] = lam2 + keep * s[2]
        eps = _sqrt(s[2] * log_d / 2.0)
        if s[0] + eps < s[15]:
            s[15] = s[0] + eps
            s[3], s[4], s[5] = s[0], s[1], s[2]
            s[6], s[7], s[8] = 0.0, 0.0, 1.0
        else:
            s[6] = v if s[7] == 0.0 else lam * v + (1.0 - lam) * s[6]
            s[7] = 1.0
            s[8] = lam2 + keep * s[8]
        drift, stat, thr = self._changed(1, 2, log_d)
        warn, wst, wth = False, 0.0, 0.0
        if not drift:
            warn, wst, wth = self._changed(1, 2, self._log_w)
        if s[0] - eps > s[16]:
            s[16] = s[0] - eps
            s[9], s[10], s[11] = s[0], s[1], s[2]
            s[12], s[13], s[14] = 0.0, 0.0, 1.0
        else:
            s[12] = v if s[13] == 0.0 else lam * v + (1.0 - lam) * s[12]
            s[13] = 1.0
            s[14] = lam2 + keep * s[14]
        if self.two_sided_test and not drift:
            d2, st2, th2 = self._changed(4, 3, log_d)
            if d2:
                drift, stat, thr = True, st2, th2
            elif not warn:
                warn, wst, wth = self._changed(4, 3, self._log_w)
        if drift:
            self.reset()
            return [Alarm("HDDM_W", 0, stat, thr, "drift")]
        was = s[17]
        s[17] = 1.0 if warn else 0.0
        if warn and was == 0.0:
            return [Alarm("HDDM_W", 0, wst, wth, "warning")]
        return []

    @property
    def statistic(self) -> float:
        """The weighted mean's difference from the cut point's, compared with ``threshold`` (a
        drift when above): the upward side, or with ``two_sided_test`` the side that fires
        (upward first, as the alarm), else the one nearer its bound. 0 (and ``threshold`` 0)
        while no value follows the cut point, when no drift can fire; NaN before any value."""
        return _pick(self._sides(), strict=True)[0]

    @property
    def threshold(self) -> float:
        """McDiarmid's bound at ``drift_confidence`` for the side ``statistic`` reports; NaN
        where that is."""
        return _pick(self._sides(), strict=True)[1]

    def _sides(self) -> list[tuple[float, float] | None]:
        out: list[tuple[float, float] | None] = []
        for a, b in ((1, 2), (4, 3)) if self.two_sided_test else ((1, 2),):
            s = self._s
            if s[1] == 0.0:
                out.append(None)
            elif s[3 * a + 1] == 0.0 or s[3 * b + 1] == 0.0:
                out.append((0.0, 0.0))  # as the test: nothing after the cut point, no drift
            else:
                bound = _sqrt((s[3 * a + 2] + s[3 * b + 2]) * self._log_d / 2.0)
                out.append((s[3 * b] - s[3 * a], bound))
        return out

    def _changed(self, a: int, b: int, log_inv_conf: float) -> tuple[bool, float, float]:
        s = self._s
        if s[3 * a + 1] == 0.0 or s[3 * b + 1] == 0.0:
            return False, 0.0, 0.0
        bound = _sqrt((s[3 * a + 2] + s[3 * b + 2]) * log_inv_conf / 2.0)
        diff = s[3 * b] - s[3 * a]
        return diff > bound, diff, bound

    def _batch(self, values: npt.ArrayLike) -> list[Alarm]:
        x = np.ascontiguousarray(as_float_array(values).reshape(-1))
        if not x.flags.writeable:  # one compiled signature: read-only arrays would need another
            x = x.copy()
        out_i = np.empty(min(_BUFFER, x.size + 1), dtype=np.int64)
        out_s, out_t = np.empty(out_i.size), np.empty(out_i.size)
        out_k = np.empty(out_i.size, dtype=np.int64)
        log_d, log_w = self._log_d, self._log_w
        alarms: list[Alarm] = []
        state = np.array(self._s)
        pos = 0
        while pos < x.size:
            used, n_out = k.hddmw_kernel(
                x[pos:], state, self.lambda_val, log_d, log_w, self.two_sided_test,
                out_i, out_s, out_t, out_k,
            )  # fmt: skip
            for j in range(n_out):
                stat, thr = float(out_s[j]), float(out_t[j])
                kind: Literal["drift", "warning"] = "drift" if out_k[j] else "warning"
                alarms.append(Alarm("HDDM_W", pos + int(out_i[j]), stat, thr, kind))
            pos += used
        self._s = state.tolist()
        return alarms

    def state_dict(self) -> dict[str, Any]:
        """A plain array in a versioned envelope."""
        return envelope(self.KIND, 1, {"s": np.array(self._s)})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._s = np.array(s["s"], dtype=np.float64).reshape(-1).tolist()
