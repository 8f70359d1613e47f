"""Which features moved between a reference and a current sample, by how much, surest first.

Each feature gets an effect size that is comparable across features, so that one ranking
covers numeric and categorical features alike:

* numeric: the Wasserstein-1 distance over the reference's standard deviation (population
  sd, as :class:`~driftd.detectors.window.WindowDrift` uses; a constant reference has no sd
  and no IQR, so the pooled sd stands in, then 1). A mean shift of ``d`` sd gives ``d``;
* categorical: the total variation distance, half the sum of the absolute differences of the
  category fractions (the largest difference in probability of any set of categories).
  Categories seen fewer than 5 times in both samples together share one cell, for the
  distance and the test alike: with ID-like features (about as many categories as rows)
  every category's fraction is noise, and the plug-in distance of two samples of one
  distribution would be large (the test prints it with and without pooling).
  Pooling can only lower the distance, and shifts large enough to matter fill their cells.

Plug-in distances are biased upward: with no shift at all they are still positive, of the
order of ``sqrt(1/n + 1/m)``. ``effect`` is therefore the bootstrap bias-corrected estimate
``2 * plug_in - mean(bootstrap)`` and ``[lower, upper]`` the basic (reverse-percentile)
bootstrap interval ``[2 * plug_in - q_hi, 2 * plug_in - q_lo]``, both clipped at 0 (and the
effect clipped into its interval). Away from 0 this is the usual bootstrap; near 0 the
correction removes only part of the bias (the bootstrap distance adds fresh noise to a
distance that is itself noise), so for small effects ``lower`` is the number to trust: a
feature whose ``lower`` is 0 has not demonstrably moved. The tests measure the coverage at
nominal 0.95: about 0.95 for W1/sd = 0.3 and TV = 0.2 (thousands of rows), below it within
about two standard errors of 0 (W1/sd = 0.1 with 1,000 rows a side). Reference and current
are resampled independently, ``n_boot`` times, vectorised as multinomial weights over the
sorted pooled values (numeric) or category counts (categorical): no resample is sorted.

Features are ranked by ``lower``, not ``effect``: the noise of a plug-in distance differs
between features (heavy tails, many categories), and on the ranking test's data (two numeric
shifts and a TV 0.1 categorical one among seven unshifted features, five of them skewed)
``lower`` puts the shifted features first in more seeds than ``effect`` does (the test prints
both fractions).

``p_value`` is the window test's (:class:`~driftd.detectors.window.WindowDrift`): exact
two-sample KS (asymptotic law) for numeric features, the chi-square homogeneity test for
categorical ones; it is not corrected across features.

Missing values (NaN; ``None`` too for object arrays) are dropped; the summary reports the
missing rate when it moved by 5 percentage points or more.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from driftd.detectors.window import WindowDrift
from driftd.incidents.types import FeatureShift, Histogram

__all__ = ["Kind", "explain"]

Kind = Literal["numeric", "categorical"]
_KINDS: tuple[str, ...] = get_args(Kind)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_MISSING_NOTE = 0.05  # a missing-rate change this large (absolute) is worth a word
_CELLS = 2_000_000  # bootstrap chunk: resamples x pooled values held at once (~16 MB / array)
_MOVERS = 3  # categories named in a categorical summary
_RARE = 5  # categories seen fewer times (both samples) share one cell for TV and chi-square


def explain(
    reference: Mapping[str, npt.ArrayLike],
    current: Mapping[str, npt.ArrayLike],
    kinds: Mapping[str, Kind],
    *,
    confidence: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
    max_categories: int = 20,
    bins: int = 20,
    names: Mapping[str, Mapping[Hashable, str]] | None = None,
) -> list[FeatureShift]:
    """Effect size, interval, p-value and summary per feature, ranked by the interval's
    lower bound, largest first (ties: larger effect, then smaller p-value, then name).

    The lower bound ranks rather than the effect itself because sampling noise differs
    between features: a heavy-tailed or many-category feature that did not move has a
    larger, noisier plug-in distance than a light-tailed one (see the module docstring).

    ``reference`` and ``current`` map each feature in ``kinds`` to a 1-D array: numeric
    features as floats (NaN missing), categorical ones as float category keys (NaN missing)
    or strings / objects (``None`` or NaN missing). ``names`` optionally maps a categorical
    feature's keys to display names. A feature's bootstrap draws depend only on ``seed``
    and the feature's name, not on the other features or the order of the rows.

    :raises ValueError: the parameters are out of range, the three mappings name different
        features, a kind is unknown, or a feature is unusable (not 1-D, no non-missing value
        on one side, infinite or non-numeric values in a numeric feature); the message names
        the feature.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> ref = {"a": rng.normal(10, 1, 4000), "b": rng.normal(size=4000)}
    >>> cur = {"a": rng.normal(10.5, 1, 4000), "b": rng.normal(size=4000)}
    >>> top = explain(ref, cur, {"a": "numeric", "b": "numeric"})[0]
    >>> top.feature, round(top.effect, 1), top.p_value < 1e-6
    ('a', 0.5, True)
    >>> top.summary
    'mean 9.99 -> 10.5 (+5.0%), sd 1 -> 0.992'
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_boot < 2 or max_categories < 1 or bins < 1:
        raise ValueError(
            f"need n_boot >= 2, max_categories >= 1, bins >= 1; got {n_boot=},"
            f" {max_categories=}, {bins=}"
        )
    features = set(kinds)
    if set(reference) != features or set(current) != features:
        raise ValueError(
            "reference, current and kinds must name the same features; missing from"
            f" reference: {sorted(features - set(reference))}, from current:"
            f" {sorted(features - set(current))}, without a kind:"
            f" {sorted((set(reference) | set(current)) - features)}"
        )
    unknown = sorted(f for f in features if kinds[f] not in _KINDS)
    if unknown:
        raise ValueError(
            f"feature {unknown[0]!r}: kind must be one of {', '.join(_KINDS)};"
            f" got {kinds[unknown[0]]!r}"
        )
    shifts = []
    for feature in sorted(features):
        # Per-feature stream: a feature's result does not depend on which others are present.
        rng = np.random.default_rng([seed, zlib.crc32(feature.encode())])
        args = (feature, reference[feature], current[feature], confidence, n_boot, rng)
        if kinds[feature] == "numeric":
            shifts.append(_numeric(*args, bins))
        else:
            labels = (names or {}).get(feature, {})
            shifts.append(_categorical(*args, max_categories, labels))
    return sorted(shifts, key=lambda s: (-s.lower, -s.effect, s.p_value, s.feature))


def _numeric(
    feature: str,
    ref_raw: npt.ArrayLike,
    cur_raw: npt.ArrayLike,
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
    bins: int,
) -> FeatureShift:
    (x, ref_missing), (y, cur_missing) = (
        _floats(feature, side, raw) for side, raw in (("reference", ref_raw), ("current", cur_raw))
    )
    scale = _scale(x, y)
    plug_in, boot = _wasserstein_bootstrap(x, y, scale, n_boot, rng)
    effect, lower, upper = _interval(plug_in, boot, confidence)
    mx, my, sx = float(x.mean()), float(y.mean()), float(x.std())
    # A mean within an sd of 0 makes a percentage noise: say the change in sds instead.
    change = f"{(my - mx) / abs(mx):+.1%}" if abs(mx) > sx else f"{(my - mx) / scale:+.2f} sd"
    summary = f"mean {mx:.3g} -> {my:.3g} ({change}), sd {sx:.3g} -> {y.std():.3g}"
    return FeatureShift(
        feature=feature,
        kind="numeric",
        effect=effect,
        lower=lower,
        upper=upper,
        confidence=confidence,
        effect_name="wasserstein / sd",
        p_value=_ks_p(x, y, feature),
        n_reference=int(x.size),
        n_current=int(y.size),
        summary=summary + _missing_note(ref_missing, cur_missing),
        histogram=_numeric_histogram(x, y, bins),
    )


def _ks_p(x: FloatArray, y: FloatArray, feature: str) -> float:
    """The window test's exact-mode KS p-value. Its asymptotic law needs n m / (n + m) to
    round to at least 1; at one row a side the exact p-value is 1 (both splits of two
    values are equally extreme)."""
    if x.size == y.size == 1:
        return 1.0
    drift = WindowDrift(x, names=[feature], mode="exact", correction="none", floor=0.0)
    return drift.test(y)[feature].p_value


def _floats(feature: str, side: str, raw: npt.ArrayLike) -> tuple[FloatArray, float]:
    """Sorted non-missing values (sorting makes every result independent of row order) and
    the missing rate."""
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"feature {feature!r}: {side} values are not numeric ({exc})") from exc
    _check_1d(feature, side, arr)
    keep = ~np.isnan(arr)
    values = np.sort(arr[keep])
    if not np.isfinite(values).all():
        raise ValueError(f"feature {feature!r}: {side} holds infinite values")
    return values, _usable(feature, side, arr.size, values.size)


def _check_1d(feature: str, side: str, arr: npt.NDArray[np.generic]) -> None:
    if arr.ndim != 1:
        raise ValueError(f"feature {feature!r}: {side} must be 1-D, got shape {arr.shape}")


def _usable(feature: str, side: str, rows: int, present: int) -> float:
    """The missing rate; no present value at all makes the feature unusable."""
    if present == 0:
        what = "is empty" if rows == 0 else f"has {rows} rows, all missing"
        raise ValueError(f"feature {feature!r}: the {side} sample {what}; nothing to compare")
    return 1.0 - present / rows


def _scale(x: FloatArray, y: FloatArray) -> float:
    """The reference sd; a constant reference has none (nor an IQR): the pooled sd, then 1."""
    for values in (x, np.concatenate((x, y))):
        sd = float(values.std())
        if sd > 0.0:
            return sd
    return 1.0


def _wasserstein_bootstrap(
    x: FloatArray, y: FloatArray, scale: float, n_boot: int, rng: np.random.Generator
) -> tuple[float, FloatArray]:
    """W1(x, y) / scale, and its ``n_boot`` bootstrap replicates (each over its resampled
    reference's sd), from multinomial weights on the sorted pooled values."""
    n, m = x.size, y.size
    pooled = np.concatenate((x, y))
    order = np.argsort(pooled, kind="stable")
    widths = np.append(np.diff(pooled[order]), 0.0)  # the CDFs meet at the last value
    centred = x - x.mean()
    plug_in = float(_w1(np.ones((1, n)), np.ones((1, m)), order, widths)[0]) / scale
    out = np.empty(n_boot)
    step = max(1, _CELLS // pooled.size)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        wx, wy = _resample_counts(n, b, rng), _resample_counts(m, b, rng)
        mean = np.einsum("bi,i->b", wx, centred) / n
        sd = np.sqrt(np.maximum(np.einsum("bi,i->b", wx, centred * centred) / n - mean**2, 0.0))
        # A resample of a near-constant reference can be constant: keep the full sample's scale.
        sd = np.where(sd > 1e-12 * scale, sd, scale)
        out[start : start + b] = _w1(wx, wy, order, widths) / sd
    return plug_in, out


def _resample_counts(n: int, b: int, rng: np.random.Generator) -> FloatArray:
    """How often each of ``n`` rows is drawn in each of ``b`` resamples with replacement."""
    draws = rng.integers(0, n, size=(b, n))
    draws += (np.arange(b) * n)[:, None]  # one bincount for all resamples: row r counts in r*n..
    counts: FloatArray = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)
    return counts


def _w1(wx: FloatArray, wy: FloatArray, order: IntArray, widths: FloatArray) -> FloatArray:
    """Row-wise W1 = integral |F - G| between the weighted samples ``x`` (weights ``wx``) and
    ``y`` (``wy``); ``order`` sorts the pooled ``(x, y)``, ``widths`` are its gaps (and 0)."""
    n = wx.shape[1]
    signed = np.empty((wx.shape[0], n + wy.shape[1]))
    np.divide(wx, wx.sum(axis=1, keepdims=True), out=signed[:, :n])
    np.divide(wy, -wy.sum(axis=1, keepdims=True), out=signed[:, n:])
    cdf = np.take(signed, order, axis=1)
    np.cumsum(cdf, axis=1, out=cdf)
    np.abs(cdf, out=cdf)
    result: FloatArray = np.einsum("bi,i->b", cdf, widths)  # not BLAS: no thread pool
    return result


def _interval(plug_in: float, boot: FloatArray, confidence: float) -> tuple[float, float, float]:
    """Bias-corrected effect and basic bootstrap interval, clipped at 0 (module docstring)."""
    tail = (1.0 - confidence) / 2.0
    q_lo, q_hi = np.quantile(boot, [tail, 1.0 - tail])
    lower = max(0.0, 2.0 * plug_in - float(q_hi))
    upper = max(0.0, 2.0 * plug_in - float(q_lo))
    effect = min(max(2.0 * plug_in - float(boot.mean()), lower), upper)
    return effect, lower, upper


def _numeric_histogram(x: FloatArray, y: FloatArray, bins: int) -> Histogram:
    """Fractions of each sample in ``bins`` pooled-quantile bins (fewer where values tie)."""
    pooled = np.sort(np.concatenate((x, y)))
    edges = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:  # every value equal: one bin around it
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    ref = np.histogram(x, edges)[0] / x.size
    cur = np.histogram(y, edges)[0] / y.size
    return Histogram(edges.tolist(), (), ref.tolist(), cur.tolist())


def _missing_note(ref: float, cur: float) -> str:
    if abs(cur - ref) < _MISSING_NOTE:
        return ""
    return f"; missing {_pct(ref)} -> {_pct(cur)}"


def _pct(p: float) -> str:
    return f"{p:.1%}" if 0.0 < p < 0.01 else f"{p:.0%}"


def _categorical(
    feature: str,
    ref_raw: npt.ArrayLike,
    cur_raw: npt.ArrayLike,
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
    max_categories: int,
    names: Mapping[Hashable, str],
) -> FeatureShift:
    (ref_vals, ref_missing), (cur_vals, cur_missing) = (
        _present(feature, side, raw) for side, raw in (("reference", ref_raw), ("current", cur_raw))
    )
    keys, codes = _factorize(_join(ref_vals, cur_vals))
    k, n = len(keys), ref_vals.size
    ref_counts = np.bincount(codes[:n], minlength=k)
    cur_counts = np.bincount(codes[n:], minlength=k)
    p, q = ref_counts / n, cur_counts / cur_vals.size
    cells = _pool_rare(ref_counts + cur_counts)[codes]
    plug_in, boot = _tv_bootstrap(cells[:n], cells[n:], n_boot, rng)
    effect, lower, upper = _interval(plug_in, boot, confidence)
    drift = WindowDrift(None, categorical=cells[:n], categorical_names=[feature], correction="none")
    labels = [_label(key, names) for key in keys]
    moved = np.lexsort((np.arange(k), -(p + q), -np.abs(q - p)))  # largest move first
    summary = ", ".join(
        f"{_quoted(keys[i], labels[i])} {_pct(p[i])} -> {_pct(q[i])}" for i in moved[:_MOVERS]
    )
    return FeatureShift(
        feature=feature,
        kind="categorical",
        effect=effect,
        lower=lower,
        upper=upper,
        confidence=confidence,
        effect_name="total variation",
        p_value=drift.test(None, cells[n:])[feature].p_value,
        n_reference=int(n),
        n_current=int(cur_vals.size),
        summary=summary + _missing_note(ref_missing, cur_missing),
        histogram=_categorical_histogram(moved, labels, p, q, max_categories),
    )


def _pool_rare(counts: IntArray) -> IntArray:
    """Category -> cell: categories seen fewer than ``_RARE`` times in both samples together
    share one cell (when two or more are), the others keep their own."""
    rare = counts < _RARE
    if rare.sum() < 2:
        return np.arange(counts.size)
    return np.where(rare, int((~rare).sum()), np.cumsum(~rare) - 1)


def _tv_bootstrap(
    ref: IntArray, cur: IntArray, n_boot: int, rng: np.random.Generator
) -> tuple[float, FloatArray]:
    """TV between the cell fractions of two samples and its bootstrap replicates."""
    k = int(max(ref.max(), cur.max())) + 1
    p, q = np.bincount(ref, minlength=k) / ref.size, np.bincount(cur, minlength=k) / cur.size
    boot_p = rng.multinomial(ref.size, p, size=n_boot) / ref.size
    boot_q = rng.multinomial(cur.size, q, size=n_boot) / cur.size
    return 0.5 * float(np.abs(p - q).sum()), 0.5 * np.abs(boot_p - boot_q).sum(axis=1)


def _present(feature: str, side: str, raw: npt.ArrayLike) -> tuple[npt.NDArray[np.generic], float]:
    """The non-missing category keys and the missing rate."""
    arr = np.asarray(raw)
    _check_1d(feature, side, arr)
    if arr.dtype.kind == "f":
        missing = np.isnan(arr)
    elif arr.dtype.kind == "O":
        missing = np.fromiter((v is None or v != v for v in arr), bool, arr.size)
    else:  # strings, integers, booleans: nothing is missing
        missing = np.zeros(arr.size, bool)
    values = arr[~missing]
    return values, _usable(feature, side, arr.size, values.size)


def _join(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Both samples' keys in one array; as objects unless their kinds agree, so that the
    float key 1.0 never becomes the string '1.0'."""
    if a.dtype.kind == b.dtype.kind and a.dtype.kind in "fiubUS":
        return np.concatenate((a, b))
    return np.concatenate((a.astype(object), b.astype(object)))


def _factorize(values: npt.NDArray[np.generic]) -> tuple[list[Hashable], IntArray]:
    """Sorted distinct keys and each value's index among them."""
    try:
        keys, codes = np.unique(values, return_inverse=True)
        return keys.tolist(), codes.astype(np.int64).ravel()
    except TypeError:  # mixed types (numbers and strings): numbers by value, then the rest
        distinct = sorted(set(values.tolist()), key=_mixed_order)
        index = {v: i for i, v in enumerate(distinct)}
        return distinct, np.fromiter((index[v] for v in values.tolist()), np.int64, values.size)


def _mixed_order(key: Hashable) -> tuple[int, float, str, str]:
    # 0 == 0.0 == False are one category whichever was seen first: order them by value.
    if isinstance(key, int | float):
        return (0, float(key), "", "")
    return (1, 0.0, type(key).__name__, str(key))


def _label(key: Hashable, names: Mapping[Hashable, str]) -> str:
    if key in names:
        return names[key]
    if isinstance(key, float):  # keys "as given"; an integral float prints as an integer
        return str(int(key)) if key.is_integer() else repr(key)
    return str(key)


def _quoted(key: Hashable, label: str) -> str:
    return label if isinstance(key, int | float) and label == _label(key, {}) else repr(label)


def _categorical_histogram(
    moved: IntArray, labels: list[str], p: FloatArray, q: FloatArray, max_categories: int
) -> Histogram:
    """The ``max_categories`` categories that moved most, then the rest pooled as "other"."""
    top, rest = moved[:max_categories], moved[max_categories:]
    ref, cur = p[top].tolist(), q[top].tolist()
    names = [labels[i] for i in top]
    if rest.size:
        names.append("other")
        ref.append(float(p[rest].sum()))
        cur.append(float(q[rest].sum()))
    return Histogram((), names, ref, cur)
