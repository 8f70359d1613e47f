"""Multivariate two-sample drift tests: kernel MMD with a permutation p-value, and a domain
classifier whose cross-fitted AUC (with a DeLong confidence interval) measures how separable the
current window is from the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from scipy import stats

from driftd.errors import ConfigError

__all__ = ["MMD", "DomainClassifier", "DomainClassifierResult", "MMDResult", "delong_auc"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MMDResult:
    """Unbiased MMD^2 with its permutation p-value and the kernel bandwidth used."""

    statistic: float
    p_value: float
    bandwidth: float
    n_permutations: int
    drift: bool


class MMD:
    """Kernel two-sample test: Gaussian-kernel unbiased MMD^2, permutation p-value in torch.

    The pooled kernel matrix ``K`` is computed once. A permutation is an indicator vector ``a``
    of the rows labelled "reference"; with ``r = K 1`` every MMD^2 term follows from ``a' K a``
    and ``r' a``, so a chunk of permutations costs one ``K @ A`` matmul (``A``: N x chunk).
    p = (1 + #{permuted >= observed}) / (1 + n_permutations).

    Parameters
    ----------
    reference
        Reference rows, shape ``(n, d)``.
    n_permutations
        Number of random relabellings.
    alpha
        Level for ``drift``.
    bandwidth
        Kernel width sigma in ``exp(-|x-y|^2 / (2 sigma^2))``; ``None``: median pairwise
        distance of (up to ``median_points`` of) the pooled sample.
    chunk
        Permutations per matmul (memory ``N x chunk``).
    device
        Torch device; ``None``: CUDA when available, else CPU.
    seed
        Seeds a generator on ``device``: the same inputs give the same p-value on one device.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> test = MMD(rng.normal(size=(300, 4)), n_permutations=200, device="cpu")
    >>> test.test(rng.normal(size=(300, 4)) + [1.0, 0, 0, 0]).p_value < 0.01
    True
    """

    def __init__(
        self,
        reference: npt.ArrayLike,
        *,
        n_permutations: int = 1000,
        alpha: float = 0.05,
        bandwidth: float | None = None,
        chunk: int = 256,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        median_points: int = 2000,
    ) -> None:
        if n_permutations < 1 or chunk < 1:
            raise ConfigError(
                f"need n_permutations >= 1 and chunk >= 1, got {n_permutations} and {chunk}"
            )
        if bandwidth is not None and bandwidth <= 0:
            raise ConfigError(f"bandwidth must be positive, got {bandwidth!r}")
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.reference = torch.as_tensor(_rows(reference), dtype=dtype, device=self.device)
        self.n_permutations, self.alpha, self.bandwidth = n_permutations, alpha, bandwidth
        self.chunk, self.seed, self.median_points = chunk, seed, median_points

    def test(self, current: npt.ArrayLike) -> MMDResult:
        """Test ``current`` (shape ``(m, d)``) against the reference."""
        x = self.reference
        y = torch.as_tensor(_rows(current), dtype=x.dtype, device=self.device)
        if y.shape[1] != x.shape[1]:
            raise ValueError(f"current has {y.shape[1]} columns, reference {x.shape[1]}")
        n, m = x.shape[0], y.shape[0]
        z = torch.cat((x, y))
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        sigma = self.bandwidth or _median_distance(z, self.median_points, gen)
        sq = (z * z).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min_(0.0)
        k = torch.exp_(d2.mul_(-1.0 / (2.0 * sigma * sigma)))
        del d2
        big_n = n + m
        diag = torch.diagonal(k).to(torch.float64)
        row = k.sum(1, dtype=torch.float64)
        total, trace = float(row.sum()), float(diag.sum())

        def mmd2(a: torch.Tensor) -> torch.Tensor:  # a: N x P indicators of "reference"
            q = (a * (k @ a)).sum(0, dtype=torch.float64)
            s = row @ a.to(torch.float64)
            tr_a = diag @ a.to(torch.float64)
            kxx = q - tr_a
            kyy = total - 2.0 * s + q - (trace - tr_a)
            kxy = s - q
            return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)

        ident = torch.zeros(big_n, 1, dtype=k.dtype, device=self.device)
        ident[:n] = 1.0
        observed = float(mmd2(ident)[0])
        exceed, done = 0, 0
        while done < self.n_permutations:
            p = min(self.chunk, self.n_permutations - done)
            idx = torch.rand(p, big_n, generator=gen, device=self.device).argsort(dim=1)[:, :n]
            a = torch.zeros(big_n, p, dtype=k.dtype, device=self.device)
            a.scatter_(0, idx.T, 1.0)
            exceed += int((mmd2(a) >= observed).sum())
            done += p
        p_value = (1 + exceed) / (1 + self.n_permutations)
        return MMDResult(
            observed, p_value, float(sigma), self.n_permutations, p_value <= self.alpha
        )


def _median_distance(z: torch.Tensor, points: int, gen: torch.Generator) -> float:
    if z.shape[0] > points:
        z = z[torch.randperm(z.shape[0], generator=gen, device=z.device)[:points]]
    d = torch.cdist(z, z)
    upper = d[torch.triu_indices(d.shape[0], d.shape[0], 1, device=z.device).unbind(0)]
    med = float(upper.median())
    return med if med > 0 else 1.0


@dataclass(frozen=True, slots=True)
class DomainClassifierResult:
    """Cross-fitted AUC of reference-vs-current, its DeLong interval and one-sided p-value."""

    auc: float
    ci_low: float
    ci_high: float
    p_value: float  # H0: AUC = 0.5 against AUC > 0.5
    drift: bool


class DomainClassifier:
    """Drift as separability: can a classifier tell the current window from the reference?

    A ridge-penalised logistic regression (Newton-IRLS, numpy) on the standardised features,
    and their squares when ``quadratic`` (so scale changes separate too), is cross-fitted over
    ``n_folds`` stratified folds: each fold is scored by a model that never saw it. The folds'
    DeLong AUCs are averaged; the mean of their standard errors gives a two-sided
    ``confidence`` interval and a one-sided p-value for AUC > 0.5 (conservative: the bound is
    tight with the default 2 folds, loose with more); ``drift`` is ``p_value <= alpha``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clf = DomainClassifier(rng.normal(size=(1000, 3)))
    >>> clf.test(rng.normal(size=(1000, 3)) + [0.5, 0, 0]).auc > 0.6
    True
    """

    def __init__(
        self,
        reference: npt.ArrayLike,
        *,
        n_folds: int = 2,
        quadratic: bool = True,
        l2: float = 1e-3,
        confidence: float = 0.95,
        alpha: float = 0.05,
        seed: int = 0,
        max_iter: int = 25,
    ) -> None:
        if n_folds < 2:
            raise ConfigError(f"n_folds must be at least 2, got {n_folds}")
        if not 0.0 < confidence < 1.0 or not 0.0 < alpha < 1.0:
            raise ConfigError(f"confidence and alpha must be in (0, 1): {confidence}, {alpha}")
        self.reference = _rows(reference)
        self.n_folds, self.quadratic, self.l2 = n_folds, quadratic, l2
        self.confidence, self.alpha, self.seed, self.max_iter = confidence, alpha, seed, max_iter

    def test(self, current: npt.ArrayLike) -> DomainClassifierResult:
        """Cross-fit, score out of fold, and test the AUC against 0.5."""
        cur = _rows(current)
        x = np.vstack((self.reference, cur))
        if self.quadratic:
            x = np.hstack((x, x * x))
        y = np.concatenate((np.zeros(len(self.reference)), np.ones(len(cur))))
        rng = np.random.default_rng(self.seed)
        folds = np.empty(y.size, dtype=np.int64)
        for label in (0.0, 1.0):  # stratified: each fold keeps the class ratio
            where = np.flatnonzero(y == label)
            folds[rng.permutation(where)] = np.arange(where.size) % self.n_folds
        aucs, variances = np.empty(self.n_folds), np.empty(self.n_folds)
        for f in range(self.n_folds):
            train, held = folds != f, folds == f
            mu, sd = x[train].mean(0), x[train].std(0)
            sd[sd == 0] = 1.0
            w = _logistic_fit((x[train] - mu) / sd, y[train], self.l2, self.max_iter)
            scores = _design((x[held] - mu) / sd) @ w
            aucs[f], se_f = delong_auc(scores[y[held] == 1], scores[y[held] == 0])
            variances[f] = se_f**2
        # The folds' AUCs are positively correlated (their models share training rows), so
        # the independence formula sqrt(sum var) / K covers 0.5 only ~85% of the time under no
        # shift; the mean of the folds' standard errors bounds the sd of their mean (Cauchy-
        # Schwarz) and covers at ~96% with 2 folds (tests/detectors/test_multivariate.py).
        auc, se = float(aucs.mean()), float(np.sqrt(variances).mean())
        z = stats.norm.ppf(0.5 + self.confidence / 2.0)
        p = float(stats.norm.sf((auc - 0.5) / se)) if se > 0 else float(auc <= 0.5)
        return DomainClassifierResult(auc, auc - z * se, auc + z * se, p, p <= self.alpha)


def delong_auc(positive: FloatArray, negative: FloatArray) -> tuple[float, float]:
    """AUC = P(positive score > negative score) (ties 1/2) and its DeLong standard error."""
    n1, n0 = positive.size, negative.size
    ranks = stats.rankdata(np.concatenate((positive, negative)))
    r_pos = ranks[:n1] - stats.rankdata(positive)  # negatives below each positive
    r_neg = ranks[n1:] - stats.rankdata(negative)  # positives below each negative
    v10 = r_pos / n0
    v01 = 1.0 - r_neg / n1
    auc = float(v10.mean())
    var = float(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0)
    return auc, math.sqrt(max(var, 0.0))


def _design(x: FloatArray) -> FloatArray:
    return np.hstack((np.ones((x.shape[0], 1)), x))


def _logistic_fit(x: FloatArray, y: FloatArray, l2: float, max_iter: int) -> FloatArray:
    """Ridge logistic regression by Newton's method (intercept unpenalised)."""
    xd = _design(x)
    w = np.zeros(xd.shape[1])
    penalty = np.full(xd.shape[1], l2 * x.shape[0])
    penalty[0] = 0.0
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(xd @ w)))
        grad = xd.T @ (p - y) + penalty * w
        hess = (xd * (p * (1.0 - p))[:, None]).T @ xd + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def _rows(values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"expected a (rows >= 2, columns) array, got shape {arr.shape}")
    return arr
