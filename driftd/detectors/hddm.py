"""HDDM_A (vectorised) and HDDM_W (compiled kernel): Hoeffding/McDiarmid drift detection."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftd.detectors import _kernels as k
from driftd.detectors._kernels import F64, Hit, check, last_true_index, scan
from driftd.detectors.base import Alarm, as_float_array, envelope, open_envelope

__all__ = ["HDDM_A", "HDDM_W"]

_BUFFER = 4096  # alarms a kernel call may report before control returns to Python


def _entries(zone: npt.NDArray[np.bool_], was_in: bool) -> npt.NDArray[np.intp]:
    if zone.size == 0:
        return np.flatnonzero(zone)
    return np.flatnonzero(zone & ~np.concatenate(([was_in], zone[:-1])))


def _check_confidences(drift: float, warning: float) -> None:
    check("drift_confidence", drift, 0 < drift < 1, "a number in (0, 1)")
    check("warning_confidence", warning, drift <= warning < 1, f"in [drift_confidence={drift}, 1)")


class HDDM_A:
    """Drift detection with Hoeffding's bound on averages (Frías-Blanco et al., 2015).

    The cut point is the prefix whose mean plus its Hoeffding bound is smallest; a drift fires
    when the mean since the last reset exceeds the cut point's mean by more than the bound for
    the two sample sizes at ``drift_confidence`` (a warning at ``warning_confidence``), and the
    detector then resets. With ``two_sided_test`` a decrease is tested too. A batch is
    processed with cumulative sums and running extremes (the cut points); the first drift is
    located, the detector resets there and the rest of the batch follows.

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
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        # count, sum, bound-adjusted mean: whole stream, low cut point, high cut point
        self._z = np.zeros(2)
        self._lo = np.array([0.0, 0.0, math.inf])
        self._hi = np.array([0.0, 0.0, -math.inf])
        self._warning = False

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch of values in [0, 1] in order; return its warning and drift alarms."""
        return scan("HDDM_A", as_float_array(values).reshape(-1), self._advance)

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
        n = self._z[0] + 1.0 + np.arange(x.size, dtype=np.float64)
        sums = np.cumsum(np.concatenate(([self._z[1]], x)))[1:]
        mean = sums / n
        eps = np.sqrt(1.0 / (2 * n) * self._log_d)
        lo_n, lo_s, lo_ext = self._cut(mean + eps, n, sums, self._lo, low=True)
        up = mean - lo_s / lo_n
        drift, thr = self._test(up, n, lo_n, self.drift_confidence)
        warn = ~drift & self._test(up, n, lo_n, self.warning_confidence)[0]
        stat = up
        if self.two_sided_test:
            hi_n, hi_s, hi_ext = self._cut(mean - eps, n, sums, self._hi, low=False)
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
        self._z = np.array([n[-1], sums[-1]])
        self._lo = np.array([lo_n[-1], lo_s[-1], lo_ext[-1]])
        if self.two_sided_test:
            self._hi = np.array([hi_n[-1], hi_s[-1], hi_ext[-1]])
        self._warning = bool(zone[-1])
        return x.size, hits

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays in a versioned envelope."""
        state = {"z": self._z.copy(), "lo": self._lo.copy(), "hi": self._hi.copy()}
        return envelope(self.KIND, 1, {**state, "warning": int(self._warning)})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._z = np.array(s["z"], dtype=np.float64)
        self._lo = np.array(s["lo"], dtype=np.float64)
        self._hi = np.array(s["hi"], dtype=np.float64)
        self._warning = bool(s["warning"])


class HDDM_W:
    """Drift detection with McDiarmid's bound on weighted (EWMA) means (Frías-Blanco, 2015).

    Like :class:`HDDM_A` but the means are exponentially weighted with ``lambda_val``, so
    old values fade; the cut point and the test use McDiarmid's bound on weighted sums. The
    recursion is sequential (each cut resets an EWMA), so a batch runs through a compiled
    numba kernel over the detector's plain state array.

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
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        self._s = np.zeros(k.HDDMW_SIZE)
        k.hddmw_reset(self._s)

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch of values in [0, 1] in order; return its warning and drift alarms."""
        x = np.ascontiguousarray(as_float_array(values).reshape(-1))
        if not x.flags.writeable:  # one compiled signature: read-only arrays would need another
            x = x.copy()
        out_i = np.empty(min(_BUFFER, x.size + 1), dtype=np.int64)
        out_s, out_t = np.empty(out_i.size), np.empty(out_i.size)
        out_k = np.empty(out_i.size, dtype=np.int64)
        log_d = math.log(1.0 / self.drift_confidence)
        log_w = math.log(1.0 / self.warning_confidence)
        alarms: list[Alarm] = []
        pos = 0
        while pos < x.size:
            used, n_out = k.hddmw_kernel(
                x[pos:], self._s, self.lambda_val, log_d, log_w, self.two_sided_test,
                out_i, out_s, out_t, out_k,
            )  # fmt: skip
            for j in range(n_out):
                stat, thr = float(out_s[j]), float(out_t[j])
                kind: Literal["drift", "warning"] = "drift" if out_k[j] else "warning"
                alarms.append(Alarm("HDDM_W", pos + int(out_i[j]), stat, thr, kind))
            pos += used
        return alarms

    def state_dict(self) -> dict[str, Any]:
        """A plain array in a versioned envelope."""
        return envelope(self.KIND, 1, {"s": self._s.copy()})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        self._s = np.array(s["s"], dtype=np.float64).copy()
