"""MMD permutation test and the domain-classifier test."""

from __future__ import annotations

import doctest

import numpy as np
import numpy.typing as npt
import pytest
import torch
from scipy import stats

from driftd.detectors import multivariate
from driftd.detectors.multivariate import MMD, DomainClassifier, delong_auc


def test_doctests() -> None:
    assert doctest.testmod(multivariate, raise_on_error=True).failed == 0


def test_mmd_statistic_matches_brute_force_unbiased_estimate() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 3)), rng.normal(size=(90, 3)) + 0.2
    res = MMD(x, n_permutations=10, device="cpu", dtype=torch.float64).test(y)
    s = res.bandwidth

    def k(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * s * s))
        return out

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    expected = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )
    assert res.statistic == pytest.approx(expected, abs=1e-12)
    z = np.vstack((x, y))
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    assert s == pytest.approx(np.median(d[np.triu_indices(len(z), 1)]), rel=1e-9)


def test_mmd_detects_a_half_sd_shift_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(400, 5))
    cur = rng.normal(size=(400, 5))
    cur[:, 0] += 0.5
    test = MMD(ref, n_permutations=300, chunk=64, device="cpu", seed=7)
    first = test.test(cur)
    assert first.drift
    assert first.p_value == pytest.approx(1 / 301)
    assert test.test(cur) == first


def test_mmd_permutation_p_values_under_no_shift() -> None:
    seeds, rejections = 40, 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        res = MMD(rng.normal(size=(80, 3)), n_permutations=200, device="cpu", seed=seed).test(
            rng.normal(size=(60, 3))
        )
        assert 0.0 < res.p_value <= 1.0
        rejections += res.drift
    assert rejections <= stats.binom.ppf(0.99, seeds, 0.05)


def test_delong_auc_equals_mann_whitney() -> None:
    rng = np.random.default_rng(2)
    pos, neg = rng.normal(0.3, 1, 200).round(1), rng.normal(0, 1, 150).round(1)  # with ties
    auc, se = delong_auc(pos, neg)
    u = stats.mannwhitneyu(pos, neg).statistic
    assert auc == pytest.approx(u / (len(pos) * len(neg)), abs=1e-12)
    assert 0.0 < se < 0.05


def test_domain_classifier_ci_covers_half_under_no_shift() -> None:
    seeds, covered = 60, 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        res = DomainClassifier(rng.normal(size=(300, 4)), seed=seed).test(rng.normal(size=(300, 4)))
        covered += res.ci_low <= 0.5 <= res.ci_high
    # stated 95%: a count this low has probability < 1% when the coverage is 95%
    assert covered >= stats.binom.ppf(0.01, seeds, 0.95)


@pytest.mark.parametrize(("shift", "scale"), [(0.3, 1.0), (0.0, 1.5)])
def test_domain_classifier_detects_mean_and_scale_shifts(shift: float, scale: float) -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(2000, 5))
    cur = rng.normal(size=(2000, 5))
    cur[:, 0] = cur[:, 0] * scale + shift
    res = DomainClassifier(ref).test(cur)
    assert res.auc > 0.55
    assert res.ci_low > 0.5
    assert res.drift and res.p_value < 1e-4
