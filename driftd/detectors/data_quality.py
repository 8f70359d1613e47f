"""Data-quality detectors: missing values, out-of-range values, unseen categories, type errors.

Each is a detector like those in ``base``: ``update(values) -> list[Alarm]``, ``reset()``,
``state_dict()`` / ``load_state_dict()``. Rows are cut into consecutive windows of ``window``
rows, whatever the batch sizes (the same alarms for any split of the stream); when a window
closes, each column's count of flagged values is tested against the rate the reference allows.

False-alarm control, shared by every check here: a window's column alarms when its count ``k``
of flagged values among ``n`` is at least the smallest ``c`` with ``P(Binomial(n, p0) >= c) <=
alpha / d`` (``d`` columns, Bonferroni). So while each column's true rate is at most ``p0``, a
window raises any alarm with probability at most ``alpha`` (less, since the binomial is
discrete), and a stream of ``W`` windows expects at most ``alpha * W`` false alarms. Alarms
carry the window's rate as ``statistic`` and ``c / n`` as ``threshold``, at the index of the
row that closed the window; the detector name gets ``[j]`` for column ``j`` of a 2-D input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import binom

from driftd.contracts.columns import MISSING  # the code of an absent categorical value
from driftd.detectors.base import Alarm, envelope, open_envelope

__all__ = ["MISSING", "MissingRate", "OutOfRange", "TypeErrorRate", "UnseenCategories"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


def critical_count(n: npt.ArrayLike, p0: npt.ArrayLike, alpha: float) -> I64:
    """Smallest ``c`` with ``P(Binomial(n, p0) >= c) <= alpha``, elementwise.

    Examples
    --------
    >>> int(critical_count(1000, 0.01, 0.01))
    19
    """
    return np.asarray(binom.ppf(1.0 - alpha, n, p0), dtype=np.int64) + 1


def _check(name: str, value: float, zero_ok: bool = False) -> float:
    if not (0.0 <= value < 1.0 if zero_ok else 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in {'[0' if zero_ok else '(0'}, 1), got {value!r}")
    return float(value)


def _columns(values: npt.ArrayLike, dtype: Any) -> npt.NDArray[Any]:
    a = np.asarray(values, dtype=dtype)
    return a.reshape(-1, 1) if a.ndim == 1 else a


class _Windowed:
    """Per-column flagged/valid counts over consecutive windows; the binomial test per window."""

    _KIND = ""
    name = ""

    def _setup(self, p0: F64, alpha: float, window: int) -> None:
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        self.alpha = _check("alpha", alpha)
        self.window = window
        self.p0 = np.asarray(p0, dtype=np.float64).ravel()
        self.reset()

    def reset(self) -> None:
        """Forget the open window (parameters and reference stay)."""
        self.rows = 0
        self.flagged: I64 = np.zeros(self.p0.size, dtype=np.int64)
        self.valid: I64 = np.zeros(self.p0.size, dtype=np.int64)

    def _feed(self, flagged: Bool, valid: Bool) -> list[Alarm]:
        n, d = flagged.shape
        if d != self.p0.size:
            raise ValueError(f"{self.name} was built for {self.p0.size} columns, got {d}")
        ends = np.arange(self.window - self.rows - 1, n, self.window)
        zero = np.zeros((1, d), dtype=np.int64)
        cf = np.concatenate([zero, np.cumsum(flagged, axis=0, dtype=np.int64)])
        cv = np.concatenate([zero, np.cumsum(valid, axis=0, dtype=np.int64)])
        if ends.size == 0:
            self.rows += n
            self.flagged += cf[-1]
            self.valid += cv[-1]
            return []
        starts = np.concatenate([[0], ends[:-1] + 1])
        k = cf[ends + 1] - cf[starts]
        m = cv[ends + 1] - cv[starts]
        k[0] += self.flagged
        m[0] += self.valid
        crit = critical_count(m, self.p0[None, :], self.alpha / d)
        fired = np.nonzero(k >= crit)
        alarms = [
            Alarm(
                self.name if d == 1 else f"{self.name}[{j}]",
                index=int(ends[w]),
                statistic=float(k[w, j] / m[w, j]),
                threshold=float(crit[w, j] / m[w, j]),
            )
            for w, j in zip(*fired, strict=True)
        ]
        self.rows = int(n - ends[-1] - 1)
        self.flagged = cf[-1] - cf[ends[-1] + 1]
        self.valid = cv[-1] - cv[ends[-1] + 1]
        return alarms

    def _state(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "window": self.window,
            "p0": self.p0.copy(),
            "rows": self.rows,
            "flagged": self.flagged.copy(),
            "valid": self.valid.copy(),
        }

    def _load(self, state: Mapping[str, Any]) -> dict[str, Any]:
        s = open_envelope(state, self._KIND, 1)
        self.alpha, self.window = float(s["alpha"]), int(s["window"])
        self.p0 = np.array(s["p0"], dtype=np.float64)
        self.rows = int(s["rows"])
        self.flagged = np.array(s["flagged"], dtype=np.int64)
        self.valid = np.array(s["valid"], dtype=np.int64)
        return s


class MissingRate(_Windowed):
    """Alarms when a window's missing rate exceeds the reference's (binomial test at ``alpha``).

    Missing is NaN in a float input, ``MISSING`` (-1) in an integer (categorical code) input; the
    kind follows the reference's dtype. The null rate per column is ``max(reference rate,
    min_rate)``: the floor keeps a reference without missing values from alarming on one.
    The reference rate is an estimate; keep the reference at least ten windows long.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = MissingRate(rng.normal(size=10_000), window=500)
    >>> x = rng.normal(size=1_000)
    >>> det.update(x)
    []
    >>> x[600:700] = np.nan
    >>> [(a.index, a.statistic) for a in det.update(x)]
    [(999, 0.2)]
    """

    _KIND = "data_quality.missing_rate"
    name = "MissingRate"

    def __init__(
        self,
        reference: npt.ArrayLike,
        alpha: float = 0.01,
        window: int = 1_000,
        min_rate: float = 0.001,
    ) -> None:
        ref = np.asarray(reference)
        if ref.dtype.kind not in "fiu" or ref.size == 0:
            raise ValueError(f"reference must be a non-empty float or integer array, got {ref!r}")
        self.categorical = ref.dtype.kind in "iu"
        rate = self._missing(ref).mean(axis=0)
        self.min_rate = _check("min_rate", min_rate, zero_ok=True)
        self._setup(np.maximum(rate, min_rate), alpha, window)

    def _missing(self, values: npt.ArrayLike) -> Bool:
        if self.categorical:
            codes: I64 = _columns(values, np.int64)
            return np.equal(codes, MISSING)
        x: F64 = _columns(values, np.float64)
        return np.isnan(x)

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume rows (1-D: one column; 2-D: rows by columns); alarm per closed window."""
        missing = self._missing(values)
        return self._feed(missing, np.ones_like(missing))

    def state_dict(self) -> dict[str, Any]:
        """Null rates and the open window, in a version-1 envelope."""
        s = self._state() | {"categorical": self.categorical, "min_rate": self.min_rate}
        return envelope(self._KIND, 1, s)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = self._load(state)
        self.categorical, self.min_rate = bool(s["categorical"]), float(s["min_rate"])


class OutOfRange(_Windowed):
    """Alarms when more values than expected fall outside the reference's quantile range.

    Per column, the range is ``[q_low, q_high]`` quantiles of the reference (NaN ignored); a
    value is out of range below or above it. The null rate is ``q_low + 1 - q_high``, exact for
    continuous data and conservative with ties. NaN values count in neither numerator nor
    denominator (``MissingRate`` watches them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = OutOfRange(rng.normal(size=20_000), window=1_000)
    >>> det.update(rng.normal(size=1_000))
    []
    >>> [a.index for a in det.update(rng.normal(0.5, 1.0, size=1_000))]
    [999]
    """

    _KIND = "data_quality.out_of_range"
    name = "OutOfRange"

    def __init__(
        self,
        reference: npt.ArrayLike,
        q_low: float = 0.005,
        q_high: float = 0.995,
        alpha: float = 0.01,
        window: int = 1_000,
    ) -> None:
        if not 0.0 <= q_low < q_high <= 1.0:
            raise ValueError(f"need 0 <= q_low < q_high <= 1, got {q_low!r}, {q_high!r}")
        ref = _columns(reference, np.float64)
        empty = np.nonzero(~np.isfinite(ref).any(axis=0))[0]
        if ref.shape[0] == 0 or empty.size:
            raise ValueError(f"reference columns {empty.tolist()} have no finite values")
        self.low, self.high = np.nanquantile(ref, [q_low, q_high], axis=0)
        self._setup(np.full(ref.shape[1], q_low + 1.0 - q_high), alpha, window)

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume rows (1-D: one column; 2-D: rows by columns); alarm per closed window."""
        x = _columns(values, np.float64)
        return self._feed((x < self.low) | (x > self.high), ~np.isnan(x))

    def state_dict(self) -> dict[str, Any]:
        """Ranges, null rates and the open window, in a version-1 envelope."""
        s = self._state() | {"low": self.low.copy(), "high": self.high.copy()}
        return envelope(self._KIND, 1, s)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = self._load(state)
        self.low = np.array(s["low"], dtype=np.float64)
        self.high = np.array(s["high"], dtype=np.float64)


class UnseenCategories(_Windowed):
    """Alarms when codes absent from the reference exceed a tolerated rate in a window.

    Inputs are integer category codes; ``MISSING`` values count in neither numerator nor
    denominator. ``tolerance`` is the null rate of unseen codes: 0 alarms on the first one.

    Examples
    --------
    >>> det = UnseenCategories(np.array([0, 1, 2, 1, 0]), window=4, tolerance=0.0)
    >>> det.update(np.array([0, 1, -1, 2, 1, 7, 0, 1]))
    [Alarm(detector='UnseenCategories', index=7, statistic=0.25, threshold=0.25, kind='drift')]
    """

    _KIND = "data_quality.unseen_categories"
    name = "UnseenCategories"

    def __init__(
        self,
        reference: npt.ArrayLike,
        tolerance: float = 0.001,
        alpha: float = 0.01,
        window: int = 1_000,
    ) -> None:
        ref = _columns(reference, np.int64)
        self.tolerance = _check("tolerance", tolerance, zero_ok=True)
        seen = [np.unique(ref[:, j]) for j in range(ref.shape[1])]
        self.offsets = np.cumsum([0] + [s.size for s in seen]).astype(np.int64)
        self.seen = np.concatenate(seen) if seen else np.zeros(0, dtype=np.int64)
        self._setup(np.full(ref.shape[1], tolerance), alpha, window)

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume codes (1-D: one column; 2-D: rows by columns); alarm per closed window."""
        x = _columns(values, np.int64)
        o = self.offsets
        known = np.column_stack(
            [np.isin(x[:, j], self.seen[o[j] : o[j + 1]]) for j in range(x.shape[1])]
        ).reshape(x.shape)
        valid = x != MISSING
        return self._feed(valid & ~known, valid)

    def state_dict(self) -> dict[str, Any]:
        """Known codes, the tolerance and the open window, in a version-1 envelope."""
        s = self._state() | {"seen": self.seen.copy(), "offsets": self.offsets.copy()}
        return envelope(self._KIND, 1, s | {"tolerance": self.tolerance})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = self._load(state)
        self.seen = np.array(s["seen"], dtype=np.int64)
        self.offsets = np.array(s["offsets"], dtype=np.int64)
        self.tolerance = float(s["tolerance"])


class TypeErrorRate:
    """Alarms when a window's share of schema/type dead letters exceeds ``max_rate``.

    Fed per window: ``values[i]`` dead letters for a schema or type error among ``totals[i]``
    events (decoded plus dead-lettered). A window alarms when its count reaches the binomial
    critical count at ``alpha`` for ``max_rate`` (see the module notes), at index ``i``. Each
    window is tested alone, so there is no state to reset beyond the parameters.

    Examples
    --------
    >>> det = TypeErrorRate(max_rate=0.001)
    >>> [a.index for a in det.update([0, 1, 12], totals=[1_000, 1_000, 1_000])]
    [2]
    """

    _KIND = "data_quality.type_error_rate"
    name = "TypeErrorRate"

    def __init__(self, max_rate: float = 0.001, alpha: float = 0.01) -> None:
        self.max_rate = _check("max_rate", max_rate, zero_ok=True)
        self.alpha = _check("alpha", alpha)

    def update(self, values: npt.ArrayLike, totals: npt.ArrayLike) -> list[Alarm]:
        """Test each window's dead-letter count against its total."""
        k = np.asarray(values, dtype=np.int64).ravel()
        n = np.asarray(totals, dtype=np.int64).ravel()
        crit = critical_count(n, self.max_rate, self.alpha)
        return [
            Alarm(self.name, int(i), float(k[i] / n[i]), float(crit[i] / n[i]))
            for i in np.nonzero((k >= crit) & (n > 0))[0]
        ]

    def reset(self) -> None:
        """Nothing to forget: each window is tested alone."""

    def state_dict(self) -> dict[str, Any]:
        """The parameters, in a version-1 envelope."""
        return envelope(self._KIND, 1, {"max_rate": self.max_rate, "alpha": self.alpha})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.max_rate, self.alpha = float(s["max_rate"]), float(s["alpha"])
