"""KSWIN: Kolmogorov-Smirnov test over a sliding window (Raab et al., 2020), compiled."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from driftd.detectors import _kernels as k
from driftd.detectors._kernels import check
from driftd.detectors.base import Alarm, as_float_array, as_scalar, envelope, open_envelope

__all__ = ["KSWIN"]

_BUFFER = 4096  # alarms a kernel call may report before control returns to Python


def _mt_state(seed: int) -> npt.NDArray[np.int64]:
    """CPython's Mersenne Twister state after ``random.Random(seed)`` (624 words)."""
    words = random.Random(seed).getstate()[1]  # noqa: S311 - reproduces River's sampling
    return np.array(words[:624], dtype=np.int64)


def _critical_count(n: int, alpha: float) -> int:
    """Smallest ``k`` with River's verdict ``p <= alpha and k/n > 0.1`` for two n-samples.

    With two samples of the same size the two-sided KS p-value (scipy's exact method, as
    River calls it) depends only on ``k = n·D``, so it is computed once here.
    """
    a = np.arange(n, dtype=np.float64)
    for c in range(1, n + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            res = stats.ks_2samp(a, a + c - 0.5, method="auto")
        if res.pvalue <= alpha and c / n > 0.1:
            return c
    return n + 1  # never fires


class KSWIN:
    """Kolmogorov-Smirnov windowing: the newest values against a random sample of older ones.

    A window keeps the last ``window_size`` values. Once it is full, every new value triggers
    a two-sample KS test between the newest ``stat_size`` values and ``stat_size`` values drawn
    without replacement from the older part; a drift fires when the p-value is at most
    ``alpha`` and the statistic exceeds 0.1, and the detector then resets (empty window,
    generator re-seeded), as River 0.26 does. Both samples have ``stat_size`` values, so the
    p-value depends only on the integer ``k = stat_size·D``: the critical ``k`` is computed once
    with scipy and the kernel only counts. The loop is sequential, so a batch runs through a
    compiled numba kernel over the detector's plain arrays. One value (a Python number or a
    size-1 array) goes through the same kernel with preallocated buffers: every value can
    fire once the window is full, so there is nothing to defer, and the compiled test is far
    cheaper than a Python one.

    Parameters
    ----------
    alpha
        Significance of each KS test, in (0, 1).
    window_size
        Values in the sliding window (> ``stat_size``).
    stat_size
        Size of each of the two compared samples (>= 1).
    seed
        Seed of the sampling generator.

    Notes
    -----
    **River.** The old-part sample is drawn with CPython's Mersenne Twister and the
    algorithm of ``random.Random.sample``, reproduced in the kernel, so detections are River
    0.26's ``drift.KSWIN(seed=seed)``, index for index (``test_streaming_river.py``). River
    also accepts ``seed=None`` and an initial window; driftd needs an integer seed (state must
    be reproducible) and starts empty.

    **Merging.** Not mergeable: the window is the last values of one ordered stream.

    **Memory.** The window, two samples and the generator state: constant.

    **False alarms.** Each test has size ``alpha`` at most (the exact KS distribution; lower
    with ties), but consecutive tests share most of their values, so the per-value rate is
    empirical: on stationary N(0, 1) streams with the defaults, 133 drifts per 100,000 values
    were measured (``test_streaming_false_alarms.py``); lower ``alpha`` for fewer.
    The same holds after resets: 128 to 135 per 100,000 on fresh N(0, 1) and Student-t(3)
    streams of 20k, 200k and 2M values (``benchmarks/detectors_rates.py``). The test is
    rank-based, so the rate does not depend on the distribution, and ``alpha=3e-6`` (the
    daemon's default) gives at most 1 per 100,000 (``benchmarks/daemon_rates.py``). It never
    fires on 0/1 streams.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(1.5, 1, 2000)])
    >>> [a.index for a in KSWIN(alpha=0.0001, seed=1).update(x)]
    [2025]
    """

    KIND = "driftd.detectors.KSWIN"

    def __init__(
        self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30, seed: int = 0
    ) -> None:
        check("alpha", alpha, 0 < alpha < 1, "a number in (0, 1)")
        check("stat_size", stat_size, stat_size >= 1, "an integer >= 1")
        check("window_size", window_size, window_size > stat_size, f"an integer > {stat_size}")
        check("seed", seed, isinstance(seed, int) and seed >= 0, "an integer >= 0")
        self.alpha, self.window_size = float(alpha), int(window_size)
        self.stat_size, self.seed = int(stat_size), int(seed)
        self._k_crit = _critical_count(self.stat_size, self.alpha)
        self._mt0 = _mt_state(self.seed)
        # random.sample's choice between a pool and a set of picks (Python 3.11's rule)
        setsize = 21
        if self.stat_size > 5:
            setsize += 4 ** math.ceil(math.log(self.stat_size * 3, 4))
        self._use_pool = self.window_size - self.stat_size <= setsize
        self._one = np.empty(1)  # the scalar path's input and alarm buffers, reused
        self._one_i = np.empty(2, dtype=np.int64)
        self._one_s = np.empty(2)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        self._window = np.zeros(self.window_size)
        self._ints = np.zeros(2, dtype=np.int64)  # values in the window, next slot
        self._mt = self._mt0.copy()
        self._pos = np.array([624], dtype=np.int64)
        self._pos_mv = self._pos.data  # cheaper reads than numpy's
        # for ``statistic``: the generator's position before the last test, and the state of
        # the generation that test started in if it drew past a twist (``_gen[1]``)
        self._p0 = 624
        self._gen = [self._mt0.copy(), self._mt0.copy()]
        self._restored = math.nan  # ``statistic`` of a restored state, until the next value

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch in order; return its drift alarms (index = position in the batch)."""
        x1 = values if type(values) is float else as_scalar(values)
        if x1 is not None:
            one = self._one
            one[0] = x1
            self._p0 = p0 = self._pos_mv[0]
            _, n_out = k.kswin_kernel(
                one, self._window, self._ints, self._mt, self._pos, self._mt0,
                self.stat_size, self._k_crit, self._use_pool, self._one_i, self._one_s,
            )  # fmt: skip
            if self._pos_mv[0] <= p0:  # the generator twisted: keep the generation it left
                gen = self._gen
                gen.reverse()
                np.copyto(gen[0], self._mt)
            if n_out == 0:
                return []
            thr = self._k_crit / self.stat_size
            return [Alarm("KSWIN", 0, float(self._one_s[0]), thr)]
        x = np.ascontiguousarray(as_float_array(values).reshape(-1))
        if x.size == 0:
            return []
        alarms = self._batch(x[:-1])
        # the last value alone, so that ``statistic`` can replay its test
        np.copyto(self._gen[0], self._mt)
        alarms += [
            Alarm(a.detector, x.size - 1, a.statistic, a.threshold, a.kind)
            for a in self.update(float(x[-1]))
        ]
        return alarms

    @property
    def statistic(self) -> float:
        """The KS statistic ``D`` of the last test (newest ``stat_size`` values against the
        sample of older ones), compared with ``threshold`` (a drift when at or above); NaN
        until the window is full. Replayed on demand from the window and the generator's
        state before that test: a value costs a position kept, a twist of the generator (every
        ~600 draws) a copy of its state."""
        if self._ints[0] < self.window_size:
            return math.nan
        if self._p0 < 0:
            return self._restored
        p0 = self._p0
        mt = self._gen[1] if self._pos_mv[0] <= p0 else self._mt
        w = self.window_size
        last = (int(self._ints[1]) - 1) % w
        ints = np.array([w - 1, last], dtype=np.int64)
        one = self._window[last : last + 1].copy()
        out_i, out_s = np.empty(1, dtype=np.int64), np.empty(1)
        # twice from the same start: with a critical count above stat_size (never fires) the
        # copies end where the test left the generator, or the test spanned two twists and
        # one kept generation cannot replay it (unknown then); with 0, D is reported
        gen, pos = mt.copy(), np.array([p0], dtype=np.int64)
        k.kswin_kernel(
            one, self._window.copy(), ints.copy(), gen, pos, self._mt0, self.stat_size,
            self.stat_size + 1, self._use_pool, out_i, out_s,
        )  # fmt: skip
        if pos[0] != self._pos_mv[0] or not np.array_equal(gen, self._mt):
            return math.nan
        k.kswin_kernel(
            one, self._window.copy(), ints, mt.copy(), np.array([p0], dtype=np.int64),
            self._mt0, self.stat_size, 0, self._use_pool, out_i, out_s,
        )  # fmt: skip
        return float(out_s[0])

    @property
    def threshold(self) -> float:
        """``k_crit / stat_size``: the smallest ``D`` at which a test fires (River's verdict
        ``p <= alpha and D > 0.1``, exact for two samples of ``stat_size``)."""
        return self._k_crit / self.stat_size

    def _batch(self, x: npt.NDArray[np.float64]) -> list[Alarm]:
        if not x.flags.writeable:  # one compiled signature: read-only arrays would need another
            x = x.copy()
        out_i = np.empty(min(_BUFFER, x.size + 1), dtype=np.int64)
        out_s = np.empty(out_i.size)
        thr = self._k_crit / self.stat_size
        alarms: list[Alarm] = []
        pos = 0
        while pos < x.size:
            used, n_out = k.kswin_kernel(
                x[pos:], self._window, self._ints, self._mt, self._pos, self._mt0,
                self.stat_size, self._k_crit, self._use_pool, out_i, out_s,
            )  # fmt: skip
            alarms += [
                Alarm("KSWIN", pos + int(out_i[j]), float(out_s[j]), thr) for j in range(n_out)
            ]
            pos += used
        return alarms

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays in a versioned envelope (with the last test's ``statistic``)."""
        state = {
            "window": self._window.copy(),
            "ints": self._ints.copy(),
            "mt": self._mt.copy(),
            "pos": self._pos.copy(),
            "statistic": self.statistic,
        }
        return envelope(self.KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state."""
        s = open_envelope(state, self.KIND, 1)
        if np.shape(s["window"]) != (self.window_size,) or np.shape(s["mt"]) != (624,):
            raise ValueError(f"KSWIN state does not fit window_size={self.window_size}")
        self._window = np.array(s["window"], dtype=np.float64)
        self._ints = np.array(s["ints"], dtype=np.int64)
        self._mt = np.array(s["mt"], dtype=np.int64)
        self._pos = np.array(s["pos"], dtype=np.int64)
        self._pos_mv = self._pos.data
        np.copyto(self._gen[0], self._mt)  # the generation in force
        self._p0 = -1  # no test replayable: the restored statistic until the next value
        self._restored = float(s.get("statistic", math.nan))
