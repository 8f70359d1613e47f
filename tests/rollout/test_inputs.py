"""The always-valid input-drift test between the arms: false halts at the worst stopping time
stay under its level; a real shift of the canary's inputs is found."""

from __future__ import annotations

import numpy as np
from scipy import stats

from driftd.rollout.inputs import drift_pvalue


def _moments(x: np.ndarray) -> np.ndarray:
    return np.stack([np.full(x.shape[1], len(x)), x.sum(0), (x**2).sum(0)], axis=1)


def _crossed(rng: np.random.Generator, shift: float, alpha: float, checks: int = 40) -> bool:
    """Whether p ever drops below alpha over ``checks`` looks at growing data."""
    k = 3
    can, cham = np.zeros((k, 3)), np.zeros((k, 3))
    for _ in range(checks):
        can += _moments(rng.normal(shift, 1.0, size=(50, k)))
        cham += _moments(rng.normal(0.0, 1.0, size=(150, k)))
        got = drift_pvalue(can, cham)
        if got is not None and got[1] < alpha:
            return True
    return False


def test_false_halts_at_the_worst_stopping_time_stay_below_alpha() -> None:
    rng = np.random.default_rng(0)
    alpha, seeds = 0.05, 300
    crossed = sum(_crossed(rng, 0.0, alpha) for _ in range(seeds))
    assert crossed <= stats.binom.isf(0.001, seeds, alpha), crossed


def test_a_shifted_canary_is_found() -> None:
    rng = np.random.default_rng(1)
    assert sum(_crossed(rng, 0.3, 0.001) for _ in range(20)) >= 19


def test_no_verdict_before_enough_data() -> None:
    x = np.random.default_rng(2).normal(size=(10, 2))
    assert drift_pvalue(_moments(x), _moments(x)) is None
