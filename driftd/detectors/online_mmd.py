"""Online multivariate drift: a sliding-window MMD with thresholds calibrated for an expected
run time (Cobb et al., 2022), in numpy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from driftd.detectors.base import Alarm, envelope, open_envelope

__all__ = ["OnlineMMD"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_CELLS = 4_000_000  # kernel entries one chunk may hold (new rows x reference rows)
_FULL_K = 2_500  # up to this many reference rows, calibration gathers from the n x n kernel


def _check(name: str, value: object, ok: bool, valid: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid; valid: {valid}")


def _sq_dist(a: F64, b: F64) -> F64:
    """Squared distances between the rows of ``a`` (m, d) and ``b`` (n, d), by BLAS."""
    d2: F64 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


class OnlineMMD:
    """Sequential MMD drift detector: a window of the last ``window`` rows against a reference.

    The statistic at each step is the unbiased Gaussian-kernel MMD^2 between a sub-reference
    ``R`` (``n - (2 window - 1)`` reference rows) and the test window ``Y`` of the ``window``
    most recent rows: ``mean_{i!=j} k(r_i, r_j) + mean_{i!=j} k(y_i, y_j) - 2 mean k(r_i, y_j)``
    with ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))`` and ``sigma`` the median pairwise distance
    of the reference (the convention of ``multivariate.MMD``). The first term is a constant; the
    other two are running sums. A new row costs its kernel against the reference (``O(n d)``)
    and against the window (``O(window d)``); the row leaving the window takes its stored terms
    with it, so nothing is ``O(window^2)``. A batch is processed with a few matrix products.

    After a reset (at construction and after each drift) the reference is re-split at random
    into ``R`` and ``2 window - 1`` held-out rows, the last ``window`` of which fill the test
    window, so the test runs from the first new row on, as in alibi-detect's MMDDriftOnline.

    Parameters
    ----------
    reference
        Reference rows, shape ``(n, d)`` with ``n >= 2 window + 1``.
    window
        Rows in the test window (>= 2). Larger windows detect small shifts more surely but
        later; ``window`` is also the number of time-dependent thresholds.
    ert
        Expected run time (rows) between false alarms when nothing changes (> 1).
    n_bootstraps
        Simulated streams for the calibration; ``None``: ``max(2000, 20 ert)``.
        Must be at least ``2 ert``.
    bandwidth
        Kernel width sigma; ``None``: the median heuristic above (on 2,500 random rows of a
        larger reference).
    seed
        Seeds the calibration and every re-split (the ``r``-th reset uses ``[seed, 1, r]``).

    Notes
    -----
    **Calibration** (Cobb et al., 2022, section 4; alibi-detect's scheme). Each of the
    ``n_bootstraps`` simulated streams splits the reference at random into a sub-reference of
    ``n - (2 window - 1)`` rows and an "extended test window" of ``2 window - 1`` rows, whose
    ``window`` overlapping windows ``e[t:t + window]`` play the test window after ``t + 1`` new
    rows under no change. Threshold ``t`` is the ``1 - 1/ert`` quantile of the MMD^2 of window
    ``t`` over the streams that did not exceed thresholds ``0..t-1``, so that each step's
    conditional false-alarm probability is ``1/ert`` and the run length is about geometric with
    mean ``ert``; from step ``window - 1`` on (the window holds only new rows) the last threshold
    applies. All kernel sums come from the reference's kernel row sums and each stream's
    ``(2 window - 1)^2`` block, so calibration costs ``O(n^2 d + B window^2 d)``: about 3 s
    for ``n = 1000``, ``d = 10``, ``window = 50``, ``B = 20000`` on two cores.

    **Run length.** The thresholds hold on average over reference samples; given one
    reference, the new rows come from the population while the simulated windows came from the
    reference itself, which moves the statistic by ``O(1/n)``. Measured with ``ert = 1000``,
    ``window = 50``, 10-d Gaussian references of 1,000 rows: 100 to 149 false alarms per
    100,000 rows (run lengths 670 to 1,000) over three references, plus the quantile noise
    (about ``1/sqrt(B / ert)``). Raise ``ert`` or the reference size for a tighter bound.

    **Speed.** 10-d, reference 1,000, window 50 (``benchmarks/online_mmd.py``, two shared
    cores, single-threaded BLAS): about 9,000 rows/s one row per call and 70,000 rows/s in
    batches of 1,000; a multi-threaded BLAS on small products can be several times slower.

    **Merging.** Not mergeable: the window is the last rows of one ordered stream.

    **Memory.** The reference, its kernel row sums, the window: constant in the stream length.

    **Batches.** Alarms do not depend on how the stream is split into batches (the running sums
    are carried in stream order; BLAS may change the last bits of a statistic).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = OnlineMMD(rng.normal(size=(500, 3)), window=20, ert=200, seed=0)
    >>> det.update(rng.normal(size=(50, 3)))
    []
    >>> alarms = det.update(rng.normal(size=(200, 3)) + [2.0, 0.0, 0.0])
    >>> 0 < alarms[0].index < 40
    True
    """

    KIND = "driftd.detectors.OnlineMMD"

    def __init__(
        self,
        reference: npt.ArrayLike,
        *,
        window: int = 50,
        ert: float = 1000.0,
        n_bootstraps: int | None = None,
        bandwidth: float | None = None,
        seed: int = 0,
    ) -> None:
        ref = np.array(reference, dtype=np.float64)
        _check("window", window, isinstance(window, int) and window >= 2, "an integer >= 2")
        _check("reference", ref.shape, ref.ndim == 2 and ref.shape[1] >= 1, "a 2-d (n, d) array")
        n = ref.shape[0]
        _check("reference", ref.shape, n >= 2 * window + 1, f"at least {2 * window + 1} rows")
        _check("reference", "non-finite", bool(np.isfinite(ref).all()), "finite values only")
        _check("ert", ert, isinstance(ert, int | float) and ert > 1, "a number > 1")
        boots = max(2000, int(20 * ert)) if n_bootstraps is None else n_bootstraps
        _check("n_bootstraps", boots, isinstance(boots, int) and boots >= 2 * ert, f">= {2 * ert}")
        _check("bandwidth", bandwidth, bandwidth is None or bandwidth > 0, "None or > 0")
        _check("seed", seed, isinstance(seed, int) and seed >= 0, "an integer >= 0")
        self.window, self.ert, self.n_bootstraps, self.seed = window, float(ert), boots, seed
        self.reference, self.d, self._n_r = ref, ref.shape[1], n - (2 * window - 1)
        if bandwidth is None:
            pts = (
                ref
                if n <= _FULL_K
                else ref[np.random.default_rng([seed, 2]).choice(n, _FULL_K, replace=False)]
            )
            d2 = _sq_dist(pts, pts)[np.triu_indices(len(pts), 1)]
            med = float(np.sqrt(np.median(d2)))
            bandwidth = med if med > 0 else 1.0
        self.bandwidth = float(bandwidth)
        self._gamma = 1.0 / (2.0 * self.bandwidth**2)
        self._ref_sq = (ref * ref).sum(1)
        rowsum = np.zeros(n)
        step = max(1, _CELLS // n)
        for a in range(0, n, step):
            rowsum[a : a + step] = self._k_ref(ref[a : a + step]).sum(1)
        self._rowsum, self._total = rowsum, float(rowsum.sum())
        self.thresholds = self._calibrate()
        self.reset()

    # -- kernels -------------------------------------------------------------------------

    def _k_ref(self, x: F64) -> F64:
        """Kernel of the rows of ``x`` against the whole reference."""
        d2: F64 = (x * x).sum(1)[:, None] + self._ref_sq[None, :] - 2.0 * (x @ self.reference.T)
        np.maximum(d2, 0.0, out=d2)
        return np.exp(d2 * -self._gamma)

    def _block(self, x: F64) -> F64:
        """Kernel matrices within each set of rows ``x`` (..., m, d), diagonal exactly 1."""
        diff = x[..., :, None, :] - x[..., None, :, :]
        k: F64 = np.exp(np.einsum("...ijk,...ijk->...ij", diff, diff) * -self._gamma)
        return k

    def _c_xx(self, held: I64, k_hh: F64) -> F64:
        """Mean off-diagonal kernel of the sub-reference (all rows but ``held``), per split."""
        n_r = self._n_r
        inner = self._total - 2.0 * self._rowsum[held].sum(-1) + k_hh.sum((-2, -1)) - n_r
        return np.asarray(inner / (n_r * (n_r - 1.0)), dtype=np.float64)

    # -- calibration ---------------------------------------------------------------------

    def _calibrate(self) -> F64:
        """Per-step thresholds for a conditional false-alarm probability ``1/ert``."""
        w, n_r, n = self.window, self._n_r, self.reference.shape[0]
        ell = 2 * w - 1
        rng = np.random.default_rng([self.seed, 0])
        mmd = np.empty((self.n_bootstraps, w))
        full = _sq_dist(self.reference, self.reference) if n <= _FULL_K else None
        per = max(1, _CELLS // (ell * ell))
        steps = np.arange(1, w)
        for a in range(0, self.n_bootstraps, per):
            b = min(per, self.n_bootstraps - a)
            held = rng.random((b, n)).argpartition(ell, axis=1)[:, :ell]
            if full is not None:  # gather the blocks from the reference's kernel matrix
                k_hh = full[held[:, :, None], held[:, None, :]]
                np.exp(k_hh * -self._gamma, out=k_hh)
            else:
                x = self.reference[held]
                sq = (x * x).sum(-1)
                k_hh = sq[:, :, None] + sq[:, None, :] - 2.0 * np.matmul(x, x.transpose(0, 2, 1))
                np.exp(np.maximum(k_hh, 0.0, out=k_hh) * -self._gamma, out=k_hh)
            k_hh[:, np.arange(ell), np.arange(ell)] = 1.0
            s = self._rowsum[held] - k_hh.sum(2)  # kernel sums against the sub-reference
            c_xx = self._c_xx(held, k_hh)
            into, out = np.zeros((b, w - 1)), np.zeros((b, w - 1))
            for j in range(1, w):  # pairs j apart: rows entering / leaving windows 1..w-1
                diag = k_hh.diagonal(offset=j, axis1=1, axis2=2)
                into += diag[:, steps + w - 1 - j]
                out += diag[:, steps - 1]
            syy = np.empty((b, w))
            syy[:, 0] = k_hh[:, :w, :w].sum((1, 2)) - w
            syy[:, 1:] = syy[:, :1] + np.cumsum(2.0 * (into - out), axis=1)
            cs = np.concatenate((np.zeros((b, 1)), s.cumsum(1)), axis=1)
            kxy = cs[:, w:] - cs[:, :w]
            mmd[a : a + b] = c_xx[:, None] + syy / (w * (w - 1.0)) - 2.0 * kxy / (n_r * w)
        thresholds = np.empty(w)
        alive = np.ones(self.n_bootstraps, dtype=bool)
        for t in range(w):
            thresholds[t] = np.quantile(mmd[alive, t], 1.0 - 1.0 / self.ert)
            alive &= mmd[:, t] <= thresholds[t]
        return thresholds

    # -- stream --------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything seen (parameters and thresholds stay)."""
        self._resets = 0
        self._split()

    def _split(self) -> None:
        """Re-split the reference; the held-out rows' last ``window`` fill the test window."""
        w, n = self.window, self.reference.shape[0]
        rng = np.random.default_rng([self.seed, 1, self._resets])
        self._held = rng.choice(n, 2 * w - 1, replace=False).astype(np.int64)
        k_hh = self._block(self.reference[self._held])
        self._cxx = float(self._c_xx(self._held, k_hh))
        s = self._rowsum[self._held] - k_hh.sum(1)
        self._win = self.reference[self._held[-w:]].copy()  # oldest first
        self._s = s[-w:].copy()
        self._syy = float(k_hh[-w:, -w:].sum() - w)
        self._kxy = float(self._s.sum())
        self._t = 0  # windows tested since the split

    def _advance(self, x: F64) -> tuple[int, float, float]:
        """Test each row of ``x`` in turn; commit the state unless one fires (then it is
        ``(index, statistic, threshold)``; else ``(-1, 0, 0)``)."""
        w, m = self.window, x.shape[0]
        s_new = self._k_ref(x).sum(1) - self._kernel(x, self.reference[self._held]).sum(1)
        z = np.concatenate((self._win, x))
        k_zz = self._kernel(z, z)  # (w + m)^2: m is capped near the window size
        rows = np.arange(m)
        c_in = np.cumsum(k_zz[:, w:], axis=0)  # down the columns of the new rows
        into = c_in[rows + w - 1, rows] - c_in[rows, rows]  # new row with the w-1 before it
        c_out = np.cumsum(k_zz[:m], axis=1)
        out = c_out[rows, rows + w - 1] - c_out[rows, rows]  # leaving row with the w-1 after
        syy = self._syy + np.cumsum(2.0 * (into - out))
        s_all = np.concatenate((self._s, s_new))
        kxy = self._kxy + np.cumsum(s_new - s_all[:m])
        stat = self._cxx + syy / (w * (w - 1.0)) - 2.0 * kxy / (self._n_r * w)
        thr = self.thresholds[np.minimum(self._t + np.arange(m), w - 1)]
        fired = np.flatnonzero(stat > thr)
        if fired.size:
            i = int(fired[0])
            return i, float(stat[i]), float(thr[i])
        self._win, self._s = z[-w:].copy(), s_all[-w:].copy()
        self._syy, self._kxy, self._t = float(syy[-1]), float(kxy[-1]), self._t + m
        return -1, 0.0, 0.0

    def _kernel(self, x: F64, y: F64) -> F64:
        return np.exp(_sq_dist(x, y) * -self._gamma)

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume rows ``(n, d)`` in order; return the drift alarms (index = row in batch).

        After a drift the detector re-splits its reference and goes on with the next row.
        """
        x = np.asarray(values, dtype=np.float64)
        if x.ndim == 1 and self.d == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"expected rows of shape (n, {self.d}), got {x.shape}")
        alarms: list[Alarm] = []
        pos, chunk = 0, 64
        cap = max(1, min(_CELLS // self.reference.shape[0], max(256, self.window)))
        while pos < x.shape[0]:
            m = min(chunk, cap, x.shape[0] - pos)
            i, stat, thr = self._advance(x[pos : pos + m])
            if i >= 0:
                alarms.append(Alarm("OnlineMMD", pos + i, stat, thr))
                self._resets += 1
                self._split()
                pos, chunk = pos + i + 1, 64
            else:
                pos, chunk = pos + m, chunk * 2
        return alarms

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays and numbers in a versioned envelope (thresholds are recomputed from
        the constructor's arguments)."""
        state = {
            "window_rows": self._win.copy(),
            "kxy_rows": self._s.copy(),
            "held": self._held.copy(),
            "c_xx": self._cxx,
            "syy": self._syy,
            "kxy": self._kxy,
            "t": self._t,
            "resets": self._resets,
            "thresholds": self.thresholds.copy(),
        }
        return envelope(self.KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer state,
        ValueError when it was saved by a detector with other parameters."""
        s = open_envelope(state, self.KIND, 1)
        w = self.window
        if np.shape(s["window_rows"]) != (w, self.d) or np.shape(s["held"]) != (2 * w - 1,):
            raise ValueError(f"OnlineMMD state does not fit window={w}, d={self.d}")
        if not np.allclose(s["thresholds"], self.thresholds, rtol=1e-9, atol=0.0):
            raise ValueError("OnlineMMD state was calibrated with other parameters or data")
        self._win = np.array(s["window_rows"], dtype=np.float64)
        self._s = np.array(s["kxy_rows"], dtype=np.float64)
        self._held = np.array(s["held"], dtype=np.int64)
        self._cxx, self._syy, self._kxy = float(s["c_xx"]), float(s["syy"]), float(s["kxy"])
        self._t, self._resets = int(s["t"]), int(s["resets"])
