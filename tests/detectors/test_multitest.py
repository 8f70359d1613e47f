"""Holm and Benjamini-Hochberg against hand-computed values and their textbook procedures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from driftd.detectors.multitest import adjust, benjamini_hochberg, holm

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_hand_computed() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm(P) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_bh_hand_computed() -> None:
    # sorted p * 4 / rank = 0.02, 0.02, 0.04, 0.04 -> running min from the top
    assert benjamini_hochberg(P) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_nan_is_left_out_of_the_family() -> None:
    out = holm([0.01, np.nan, 0.04])
    assert out[0] == pytest.approx(0.02)
    assert np.isnan(out[1])
    assert out[2] == pytest.approx(0.04)
    assert np.isnan(benjamini_hochberg([np.nan])).all()


def test_adjusted_values_capped_at_one() -> None:
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    assert adjust([0.2], "none").tolist() == [0.2]


def _holm_rejects(p: npt.NDArray[np.float64], alpha: float) -> set[int]:
    rejected: set[int] = set()
    for k, i in enumerate(np.argsort(p)):
        if p[i] > alpha / (p.size - k):
            break
        rejected.add(int(i))
    return rejected


def _bh_rejects(p: npt.NDArray[np.float64], alpha: float) -> set[int]:
    order = np.argsort(p)
    ok = [k for k in range(p.size) if p[order[k]] <= (k + 1) * alpha / p.size]
    return {int(i) for i in order[: max(ok) + 1]} if ok else set()


@pytest.mark.parametrize("seed", range(30))
def test_rejections_match_the_step_procedures(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate((rng.uniform(size=15), rng.uniform(0, 0.01, size=5)))
    for alpha in (0.01, 0.05, 0.2):
        assert set(np.flatnonzero(holm(p) <= alpha)) == _holm_rejects(p, alpha)
        assert set(np.flatnonzero(benjamini_hochberg(p) <= alpha)) == _bh_rejects(p, alpha)
    assert (holm(p) >= benjamini_hochberg(p) - 1e-15).all()
    assert (benjamini_hochberg(p) >= p - 1e-15).all()
