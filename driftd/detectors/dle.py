"""Label-free performance estimation of a regressor: direct loss estimation (DLE, as in NannyML).

On a labelled reference window, gradient-boosted trees learn the expected absolute error
``m(x) = E[|y - y_pred| | x, y_pred]`` and the expected squared error from the features and the
prediction. On an unlabelled window the estimated MAE is the mean of ``m`` over its rows, the
MSE likewise, and the RMSE the square root of the estimated MSE. Like NannyML's, it holds under
covariate shift (inputs move, the error's law given the inputs stays), not under concept shift.

Band: the realised MAE minus the estimate is the labels' noise, ``mean(|e_i| - m(x_i))``, plus
the model's error, ``mean(m(x_i) - m_hat(x_i))``. The noise has variance ``sum v(x_i) / n^2``,
with ``v`` another booster fitted to out-of-fold squared residuals on the reference. The model
error is measured by cross-fitting: the reference is split into ``n_folds`` disjoint parts, one
booster on each; a booster on ``1/n_folds`` of the rows has about ``n_folds`` times the variance
of the one on all rows, which makes the estimate, so the variance of their window means over
``n_folds`` stands for the estimate's. The band is the normal ``confidence`` interval of
the sum (RMSE: the square root of the MSE band). Smoothing bias where a shifted window leaves the
reference's support is not in the band.

The learner is a small histogram gradient-boosting regressor in numpy (depth-``depth`` trees on
at most 255 quantile bins per feature, NaN in a bin of its own; its loops are numba kernels),
so that the runtime needs no scikit-learn or LightGBM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from driftd.detectors._kernels import _jit
from driftd.detectors.base import envelope, open_envelope
from driftd.detectors.cbpe import Estimate

__all__ = ["DLE", "RegressionEstimate"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
BINS = 256  # codes per feature: up to 255 quantile bins, the last for NaN
_NAN = BINS - 1
NOISE = (50, 3, 0.1, 50)  # trees, depth, rate, min_leaf of the variance booster: a smooth v(x)


@dataclass(frozen=True, slots=True)
class RegressionEstimate:
    """Estimated MAE, MSE and RMSE of one unlabelled window of ``n`` rows."""

    n: int
    confidence: float
    mae: Estimate
    mse: Estimate
    rmse: Estimate


def _edges(x: F64) -> list[F64]:
    """Per column: at most ``BINS - 2`` distinct cut points at quantiles of its finite values."""
    out = []
    for col in x.T:
        col = col[np.isfinite(col)]
        if col.size == 0:
            out.append(np.zeros(0))
            continue
        cuts = np.unique(np.quantile(col, np.linspace(0.0, 1.0, BINS - 1)[1:-1]))
        out.append(cuts)
    return out


def _codes(x: F64, edges: list[F64]) -> U8:
    """Bin code of each cell (``_NAN`` for NaN), as (n, d) uint8."""
    codes = np.empty(x.shape, dtype=np.uint8)
    for j, e in enumerate(edges):
        codes[:, j] = np.searchsorted(e, x[:, j], side="right")
        codes[np.isnan(x[:, j]), j] = _NAN
    return codes


@_jit
def _tree(
    codes: U8, r: F64, min_leaf: int, l2: float, feature: I64, threshold: I64, node: I64
) -> F64:
    """Grow one least-squares tree on the residuals ``r``, level by level, by histogram gain.

    Writes each split (heap order) into ``feature`` and ``threshold`` (codes at most the
    threshold go left; ``BINS``: no split) and each row's leaf into ``node``; returns the
    leaves' values (shrunk by ``l2``).
    """
    n, d = codes.shape
    depth = 0
    while (1 << (depth + 1)) - 1 <= feature.size:
        depth += 1
    node[:] = 0
    for level in range(depth):
        m = 1 << level
        g = np.zeros((m, d, BINS))
        h = np.zeros((m, d, BINS))
        for i in range(n):
            k, ri = node[i], r[i]
            for j in range(d):
                g[k, j, codes[i, j]] += ri
                h[k, j, codes[i, j]] += 1.0
        for k in range(m):
            gt, ht = g[k, 0].sum(), h[k, 0].sum()
            parent = gt * gt / (ht + l2)
            best, bf, bt = 1e-12, 0, BINS
            for j in range(d):
                gl = 0.0
                hl = 0.0
                for b in range(BINS - 1):
                    gl += g[k, j, b]
                    hl += h[k, j, b]
                    hr = ht - hl
                    if hl < min_leaf or hr < min_leaf:
                        continue
                    gr = gt - gl
                    gain = gl * gl / (hl + l2) + gr * gr / (hr + l2) - parent
                    if gain > best:
                        best, bf, bt = gain, j, b
            feature[m - 1 + k], threshold[m - 1 + k] = bf, bt
        for i in range(n):
            at = m - 1 + node[i]
            node[i] = 2 * node[i] + (1 if codes[i, feature[at]] > threshold[at] else 0)
    total = np.zeros(1 << depth)
    count = np.zeros(1 << depth)
    for i in range(n):
        total[node[i]] += r[i]
        count[node[i]] += 1.0
    return total / (count + l2)


@_jit
def _predict(codes: U8, base: float, feature: I64, threshold: I64, leaf: F64, depth: int) -> F64:
    """Sum of the trees' leaves per row (trees in heap order, one row of ``feature`` each)."""
    n, trees = codes.shape[0], leaf.shape[0]
    out = np.full(n, base)
    for t in range(trees):  # rows inner: their descents are independent, so they overlap
        f, th, lf = feature[t], threshold[t], leaf[t]
        for i in range(n):
            k = 0
            for level in range(depth):
                at = (1 << level) - 1 + k
                k = 2 * k + (1 if codes[i, f[at]] > th[at] else 0)
            out[i] += lf[k]
    return out


@dataclass
class _Booster:
    """Depth-``depth`` regression trees in heap order: split feature, bin threshold, leaves."""

    base: float
    feature: I64  # (trees, 2**depth - 1)
    threshold: I64  # (trees, 2**depth - 1): codes <= threshold go left
    leaf: F64  # (trees, 2**depth)

    @classmethod
    def fit(
        cls,
        codes: U8,
        y: F64,
        n_trees: int,
        depth: int,
        rate: float,
        min_leaf: int,
        l2: float = 1.0,
    ) -> _Booster:
        """Least-squares boosting: each tree fits the residuals, split by exact histogram gain."""
        n = codes.shape[0]
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        base = float(y.mean()) if n else 0.0
        pred = np.full(n, base)
        feats = np.zeros((n_trees, 2**depth - 1), dtype=np.int64)
        thrs = np.full((n_trees, 2**depth - 1), BINS, dtype=np.int64)
        leaves = np.zeros((n_trees, 2**depth))
        node = np.zeros(n, dtype=np.int64)
        for t in range(n_trees):
            leaf = _tree(codes, y - pred, min_leaf, l2, feats[t], thrs[t], node)
            leaves[t] = rate * leaf
            pred += leaves[t][node]
        return cls(base, feats, thrs, leaves)

    def predict(self, codes: U8) -> F64:
        """The boosted prediction for each row of bin codes."""
        c = np.ascontiguousarray(codes, dtype=np.uint8)
        depth = int(self.leaf.shape[1]).bit_length() - 1
        return np.asarray(_predict(c, self.base, self.feature, self.threshold, self.leaf, depth))

    def state(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "feature": self.feature.copy(),
            "threshold": self.threshold.copy(),
            "leaf": self.leaf.copy(),
        }

    @classmethod
    def load(cls, s: Mapping[str, Any]) -> _Booster:
        return cls(
            float(s["base"]),
            np.array(s["feature"], dtype=np.int64),
            np.array(s["threshold"], dtype=np.int64),
            np.array(s["leaf"], dtype=np.float64),
        )


def _inputs(features: npt.ArrayLike, y_pred: npt.ArrayLike, d: int | None) -> F64:
    """Features with the prediction as last column, validated."""
    x = np.asarray(features, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-d (n, d), got shape {x.shape}")
    if p.shape != (x.shape[0],):
        raise ValueError(f"{x.shape[0]} feature rows but y_pred has shape {p.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"features must have {d} columns as on the reference, got {x.shape[1]}")
    if not np.isfinite(p).all():
        raise ValueError("y_pred has NaN or infinite values")
    return np.column_stack([x, p])


class DLE:
    """Direct loss estimation: MAE, MSE and RMSE of a regressor on a window without labels.

    Parameters
    ----------
    reference_features, reference_y_pred, reference_y_true
        A labelled window: ``(n, d)`` features (NaN allowed, a bin of its own; encode
        categories as numbers), the model's predictions and the true values.
    confidence
        Probability that the band covers the realised value, when the error model holds.
    n_folds
        Disjoint parts of the reference, one booster each (cross-fitting; see the module).
    n_trees, depth, learning_rate, min_leaf
        Each booster's size, tree depth, shrinkage, and the fewest reference rows in a leaf.
    seed
        The random split of the reference into parts.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(20_000, 2))
    >>> y_true = x[:, 1] + rng.normal(size=20_000) * np.exp(x[:, 0])
    >>> dle = DLE(x, x[:, 1], y_true)
    >>> x_new = rng.normal(size=(2_000, 2)) + [0.5, 0.0]  # toward the noisy side
    >>> e = dle.estimate(x_new, x_new[:, 1])
    >>> round(e.mae.value, 1), e.mae.lower < e.mae.value < e.mae.upper
    (2.2, True)
    """

    _KIND = "dle"

    def __init__(
        self,
        reference_features: npt.ArrayLike,
        reference_y_pred: npt.ArrayLike,
        reference_y_true: npt.ArrayLike,
        confidence: float = 0.95,
        n_folds: int = 5,
        n_trees: int = 100,
        depth: int = 5,
        learning_rate: float = 0.1,
        min_leaf: int = 20,
        seed: int = 0,
    ) -> None:
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        for name, v, low in (
            ("n_folds", n_folds, 2),
            ("n_trees", n_trees, 1),
            ("depth", depth, 1),
            ("min_leaf", min_leaf, 1),
        ):
            if not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate!r}")
        x = _inputs(reference_features, reference_y_pred, None)
        y = np.asarray(reference_y_true, dtype=np.float64)
        if y.shape != (x.shape[0],):
            raise ValueError(f"{x.shape[0]} reference rows but y_true has shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError("reference y_true has NaN or infinite values")
        if x.shape[0] < 2 * n_folds * min_leaf:
            raise ValueError(
                f"{x.shape[0]} reference rows: need at least 2 * n_folds * min_leaf "
                f"= {2 * n_folds * min_leaf}"
            )
        self.confidence, self.d = float(confidence), x.shape[1] - 1
        self.edges = _edges(x)
        codes = _codes(x, self.edges)
        err = y - x[:, -1]
        targets = (np.abs(err), err**2)
        fold = np.random.default_rng(seed).permutation(x.shape[0]) % n_folds
        args = (n_trees, depth, learning_rate, min_leaf)
        self.full: list[_Booster] = []  # per target: on the whole reference, for the estimate
        self.folds: list[list[_Booster]] = []  # per target: one per part, for the model's error
        self.noise: list[_Booster] = []  # per target: the variance of the target given x
        for target in targets:
            self.full.append(_Booster.fit(codes, target, *args))
            folds = [
                _Booster.fit(codes[fold == k], target[fold == k], *args) for k in range(n_folds)
            ]
            others = np.zeros(x.shape[0])  # out of fold: the mean of the boosters not fitted on it
            for k, m in enumerate(folds):
                others[fold != k] += m.predict(codes[fold != k]) / (n_folds - 1)
            self.folds.append(folds)
            self.noise.append(_Booster.fit(codes, (target - others) ** 2, *NOISE))

    def predicted_errors(self, features: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[F64, F64]:
        """Per row: the expected absolute and squared error (clipped at 0)."""
        codes = _codes(_inputs(features, y_pred, self.d), self.edges)
        abs_, sq = (m.predict(codes) for m in self.full)
        return np.clip(abs_, 0.0, None), np.clip(sq, 0.0, None)

    def estimate(self, features: npt.ArrayLike, y_pred: npt.ArrayLike) -> RegressionEstimate:
        """Estimated MAE, MSE and RMSE of an unlabelled window, each with its band."""
        codes = _codes(_inputs(features, y_pred, self.d), self.edges)
        n = codes.shape[0]
        z = float(norm.ppf(0.5 + self.confidence / 2.0))
        out = []
        for full, folds, noise in zip(self.full, self.folds, self.noise, strict=True):
            if n == 0:
                out.append(Estimate(np.nan, np.nan, np.nan))
                continue
            value = max(float(full.predict(codes).mean()), 0.0)
            means = np.array([m.predict(codes).mean() for m in folds])
            var = np.clip(noise.predict(codes), 0.0, None).sum() / n**2
            var += means.var(ddof=1) / means.size
            half = z * float(np.sqrt(var))
            out.append(Estimate(value, max(value - half, 0.0), value + half))
        mae, mse = out
        rmse = Estimate(*(float(np.sqrt(v)) for v in (mse.value, mse.lower, mse.upper)))
        return RegressionEstimate(n, self.confidence, mae, mse, rmse)

    def state_dict(self) -> dict[str, Any]:
        """The bins, the boosters and parameters, in a version-1 envelope."""
        state: dict[str, Any] = {"confidence": self.confidence, "d": self.d}
        state |= {"edges": [e.copy() for e in self.edges]}
        state |= {"full": [m.state() for m in self.full]}
        state |= {"folds": [[m.state() for m in ms] for ms in self.folds]}
        state |= {"noise": [m.state() for m in self.noise]}
        return envelope(self._KIND, 1, state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; raises StateVersionError on a foreign or newer one."""
        s = open_envelope(state, self._KIND, 1)
        self.confidence, self.d = float(s["confidence"]), int(s["d"])
        self.edges = [np.array(e, dtype=np.float64) for e in s["edges"]]
        self.full = [_Booster.load(m) for m in s["full"]]
        self.folds = [[_Booster.load(m) for m in ms] for ms in s["folds"]]
        self.noise = [_Booster.load(m) for m in s["noise"]]
