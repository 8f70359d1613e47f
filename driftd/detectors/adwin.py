"""ADWIN: adaptive windowing (Bifet and Gavaldà, 2007), as a compiled kernel."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.detectors import _kernels as k
from driftd.detectors._kernels import check
from driftd.detectors.base import Alarm, as_float_array, as_scalar, envelope, open_envelope

__all__ = ["ADWIN"]

_BUFFER = 4096  # alarms a kernel call may report before control returns to Python


class ADWIN:
    """Adaptive windowing: drop the old part of a window when its mean differs from the new part.

    The window is kept as an exponential histogram (rows of buckets of 2**i values, at most
    ``max_buckets`` per row, plus one while merging). Every ``clock`` values, once the window
    holds more than ``grace_period`` values, each bucket boundary splits it into an old and a
    new part of at least ``min_window_length`` values each, and a drift fires when
    ``|mean_old - mean_new| > ε`` with
    ``ε = sqrt(2 m v δ') + 2/3 δ' m``, ``m = 1/(n₀ - L + 1) + 1/(n₁ - L + 1)``,
    ``v`` the window variance and ``δ' = ln(2 ln(n) / delta)``. After a drift the detector
    resets completely, as River 0.26 does. The loop is sequential, so a batch runs through a
    compiled numba kernel over the detector's state, two flat arrays. One value at a time (a
    Python number or a size-1 array) is written into a slot of that state until the next test
    is due, and the values that complete it then go through the kernel in one call: a drift
    can only fire on a test, so the alarms are the same, and ``state_dict()``/``width`` first
    feed the pending values to the kernel.

    Parameters
    ----------
    delta
        Confidence parameter, in (0, 1); smaller is more conservative.
    clock
        Test for a change every ``clock`` values (>= 1).
    max_buckets
        Buckets per row of the histogram (>= 2).
    min_window_length
        Smallest old and new part compared (>= 1).
    grace_period
        Values in the window before the first test (>= 0).

    Notes
    -----
    **River.** Same operations in the same order as River 0.26's ``drift.ADWIN`` (its Rust
    ``AdaptiveWindowing``), including the full reset after a drift; detections are River's,
    index for index (``tests/detectors/test_streaming_river.py``). The alarm's statistic is
    ``|mean_old - mean_new|`` at the first split that fired and its threshold is that split's ε.

    **Merging.** Not mergeable: the histogram's bucket boundaries depend on arrival order.

    **Memory.** At most ``max_buckets + 1`` buckets in each of 64 rows: constant.

    **One value at a time**, ``benchmarks/detectors_scalar.py`` measured 1.13x to 1.24x River's
    rate (200,000 N(0, 1) values, best of 5, three runs on a loaded 2-core machine): a value
    costs a slot write and a count; every ``clock`` values one compiled call runs the test.

    **False alarms.** ``delta`` bounds the probability of a false drift per test through a union
    bound over the splits, but the bound is loose and the tests are dependent, so the rate is
    empirical: on stationary Bernoulli(0.1) streams with the defaults, one drift fired in
    4,000,000 values and none on N(0, 1) (``test_streaming_false_alarms.py`` asserts at most
    0.1 per 100,000).

    **After resets** (fresh streams of 20k, 200k or 2M values, a new detector after every
    drift, as a monitor gets; ``benchmarks/detectors_rates.py``): at most 0.015 per 100,000
    on Bernoulli 0.02 to 0.1 and 0.04 to 0.09 on N(0, 1), but 2.1 to 2.4 on Student-t(3)
    noise: heavy tails need a smaller ``delta`` (the daemon uses 1e-6 on standardised values).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> p = np.where(np.arange(4000) < 2000, 0.1, 0.3)
    >>> x = (rng.random(4000) < p).astype(float)
    >>> [(a.index, a.kind) for a in ADWIN().update(x)]
    [(2079, 'drift')]
    """

    KIND = "driftd.detectors.ADWIN"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        check("delta", delta, 0 < delta < 1, "a number in (0, 1)")
        check("clock", clock, clock >= 1, "an integer >= 1")
        check("max_buckets", max_buckets, max_buckets >= 2, "an integer >= 2")
        check("min_window_length", min_window_length, min_window_length >= 1, "an integer >= 1")
        check("grace_period", grace_period, grace_period >= 0, "an integer >= 0")
        self.delta = float(delta)
        self.clock = int(clock)
        self.max_buckets = int(max_buckets)
        self.min_window_length = int(min_window_length)
        self.grace_period = int(grace_period)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        levels, width = k.ADWIN_LEVELS, self.max_buckets + 1
        size = levels * width
        base = 2 * size
        f = np.zeros(base + k.ADWIN_PENDING + self.clock)
        f[base + k.ADWIN_PARAMS : base + k.ADWIN_OUT] = (
            self.delta,
            self.min_window_length,
            self.grace_period,
        )
        i = np.zeros(k.ADWIN_INTS, dtype=np.int64)
        i[k.ADWIN_ROWS], i[k.ADWIN_CLOCK], i[k.ADWIN_MAX_BUCKETS] = 1, self.clock, width - 1
        self._f, self._i = f, i  # the whole state; the arrays below are views of it
        self._totals = f[:size].reshape(levels, width)  # rows of buckets, each a ring
        self._variances = f[size:base].reshape(levels, width)
        self._fs = f[base : base + 3]  # total, variance (sum of squares), width
        self._counts = i[:levels]
        self._starts = i[k.ADWIN_START : k.ADWIN_START + levels]  # each ring's oldest slot
        self._ints = i[k.ADWIN_TICK : k.ADWIN_ROWS + 1]  # tick modulo clock, rows in use
        self._out = base + k.ADWIN_OUT  # the alarm's statistic and threshold
        self._first = base + k.ADWIN_PENDING  # where the pending values start in ``f``
        # a memoryview of those slots: item assignment without numpy's cost, and slot numbers
        # below 257 for the usual clocks, which CPython does not allocate
        self._slots = f.data[self._first :]
        # pending values fill the slots from the one before ``_left`` down to slot 0, whose
        # value completes the next test: one count, tested against zero
        self._left = self.clock

    @property
    def width(self) -> int:
        """Values in the current window."""
        self._feed_pending()
        return int(self._fs[2])

    @property
    def statistic(self) -> float:
        """``|mean_old - mean_new|`` of the cut test run on the current window: at the first
        split (in the test's order) where it exceeds that split's ε, as the alarm reports it,
        else at the split nearest its ε; the test itself runs every ``clock`` values. NaN while
        the window holds ``grace_period`` values or fewer, or has no split with both parts of
        ``min_window_length`` values."""
        return self._cut_test()[0]

    @property
    def threshold(self) -> float:
        """ε of the split ``statistic`` reports (a drift when the statistic is above it)."""
        return self._cut_test()[1]

    def _cut_test(self) -> tuple[float, float]:
        """The kernel's cut search in Python on the current window, without its division-free
        shortcuts (which only skip splits that cannot fire): same splits, same operations."""
        self._feed_pending()
        total, var, width = (float(v) for v in self._fs)
        if width <= self.grace_period:
            return math.nan, math.nan
        totals = k.adwin_buckets(self._f, self._i)[0]
        min_len = float(self.min_window_length)
        n0, n1, u0, u1 = 0.0, width, 0.0, total
        dp = var_w = math.nan
        best = (math.nan, math.nan)
        for row in range(int(self._ints[1]) - 1, -1, -1):
            size = float(1 << row)
            count = int(self._counts[row]) - (row == 0)  # the newest bucket is never a split
            for tot in totals[row, :count].tolist():
                n0 += size
                n1 -= size
                u0 += tot
                u1 -= tot
                if n1 >= min_len and n0 >= min_len:
                    if dp != dp:
                        dp = math.log(2.0 * math.log(width) / self.delta)
                        var_w = var / width
                    ra, rb = n0 - min_len + 1.0, n1 - min_len + 1.0
                    dm = abs((u0 / n0) - (u1 / n1))
                    m = 1.0 / ra + 1.0 / rb
                    eps = math.sqrt(2.0 * m * var_w * dp) + 2.0 / 3.0 * dp * m
                    if dm > eps:
                        return dm, eps
                    if best[0] != best[0] or dm - eps > best[0] - best[1]:
                        best = (dm, eps)
        return best

    @property
    def _pending(self) -> npt.NDArray[np.float64]:
        """Single values not yet fed to the kernel (a copy)."""
        due = self._first + self.clock - int(self._ints[0])
        return self._f[self._first + self._left : due][::-1].copy()

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch in order; return its drift alarms (index = position in the batch)."""
        if type(values) is float:
            left = self._left - 1
            self._slots[left] = values
            if left:
                self._left = left
                return []
            # the pending values complete a test: one compiled call on the two blocks
            self._left = self.clock
            if not k.adwin_tick(self._f, self._i):
                return []
            stat, threshold = self._f[self._out : self._out + 2].tolist()
            return [Alarm("ADWIN", 0, stat, threshold)]
        x1 = as_scalar(values)
        if x1 is not None:
            return self.update(x1)
        self._feed_pending()
        alarms = self._batch(values)
        self._left = self.clock - int(self._ints[0])
        return alarms

    def _feed_pending(self) -> None:
        """Run the pending single values, fewer than complete a test, through the kernel."""
        x = self._pending
        if x.size == 0:
            return
        self._batch(x)  # no alarm: a drift fires only on a test, and no test was due
        self._left = self.clock - int(self._ints[0])

    def _batch(self, values: npt.ArrayLike) -> list[Alarm]:
        x = np.ascontiguousarray(as_float_array(values).reshape(-1))
        if not x.flags.writeable:  # one compiled signature: read-only arrays would need another
            x = x.copy()
        out_i = np.empty(min(_BUFFER, x.size + 1), dtype=np.int64)
        out_s, out_t = np.empty(out_i.size), np.empty(out_i.size)
        alarms: list[Alarm] = []
        pos = 0
        while pos < x.size:
            pos, n_out = k.adwin_run(x, pos, x.size, self._f, self._i, out_i, out_s, out_t)
            alarms += [
                Alarm("ADWIN", int(out_i[j]), float(out_s[j]), float(out_t[j]))
                for j in range(n_out)
            ]
        return alarms

    def __getstate__(self) -> dict[str, Any]:
        """For copy and pickle: the parameters and ``state_dict()`` (copied as they are, the
        views into the state would no longer share it)."""
        names = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")
        return {"params": {n: getattr(self, n) for n in names}, "state": self.state_dict()}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        ADWIN.__init__(self, **state["params"])
        self.load_state_dict(state["state"])

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays in a versioned envelope."""
        self._feed_pending()
        totals, variances = k.adwin_buckets(self._f, self._i)
        state = {
            "totals": totals,
            "variances": variances,
            "counts": self._counts.copy(),
            "fs": self._fs.copy(),
            "ints": self._ints.copy(),
        }
        return envelope(self.KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        shape = (k.ADWIN_LEVELS, self.max_buckets + 1)
        if np.shape(s["totals"]) != shape or np.shape(s["variances"]) != shape:
            raise ValueError(
                f"ADWIN state has buckets of shape {np.shape(s['totals'])}, not {shape}"
            )
        views = {"counts": self._counts, "fs": self._fs, "ints": self._ints}
        for key, view in views.items():
            if np.shape(s[key]) != view.shape:
                raise ValueError(f"ADWIN state has {key} of shape {np.shape(s[key])}")
        views |= {"totals": self._totals, "variances": self._variances}
        for key, view in views.items():
            view[...] = s[key]
        self._starts[:] = 0  # the state's rows start with their oldest bucket
        # a tick at or past this clock (a state saved under a longer one): the next value tests,
        # as it would from clock - 1, and the scalar path has a slot for it
        self._ints[0] = min(int(self._ints[0]), self.clock - 1)
        self._left = self.clock - int(self._ints[0])  # pending values belonged to the state
