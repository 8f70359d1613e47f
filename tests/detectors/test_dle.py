"""DLE: the estimated MAE/RMSE track the realised ones under covariate shift, and the band covers
them at its stated rate, on a heteroscedastic simulation (the error's size depends on a feature).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from driftd.detectors.dle import DLE, _Booster, _codes, _edges
from driftd.errors import StateVersionError

CONFIDENCE = 0.9


def _draw(
    rng: np.random.Generator, n: int, shift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, the model's prediction and the truth; noise sd 0.3 + |x0|, x0 shifted."""
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift
    y_pred = 2.0 * x[:, 1] + x[:, 2]
    y_true = y_pred + 0.2 * x[:, 2] + rng.normal(size=n) * (0.3 + np.abs(x[:, 0]))
    return x, y_pred, y_true


def test_estimates_track_the_realised_error_and_the_band_covers() -> None:
    est, real, lo, hi = [], [], [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        dle = DLE(*_draw(rng, 15_000, 0.0), confidence=CONFIDENCE, n_trees=60)
        for shift in rng.uniform(-0.8, 0.8, 6):
            x, p, y = _draw(rng, 2_000, float(shift))
            e = dle.estimate(x, p)
            err = y - p
            for m, r in ((e.mae, np.abs(err).mean()), (e.rmse, np.sqrt((err**2).mean()))):
                est.append(m.value)
                real.append(r)
                lo.append(m.lower)
                hi.append(m.upper)
    est_a, real_a = np.array(est).reshape(-1, 2), np.array(real).reshape(-1, 2)
    inside = (np.array(lo) <= np.array(real)) & (np.array(real) <= np.array(hi))
    inside = inside.reshape(-1, 2)
    for j, name in enumerate(("mae", "rmse")):
        assert np.corrcoef(est_a[:, j], real_a[:, j])[0, 1] > 0.9, name
        rel = np.abs(est_a[:, j] - real_a[:, j]) / real_a[:, j]
        assert rel.mean() < 0.04, f"{name}: mean relative error {rel.mean():.3f}"
        p = binomtest(int(inside[:, j].sum()), inside.shape[0], CONFIDENCE).pvalue
        assert p > 1e-3, f"{name}: coverage {inside[:, j].mean():.3f} over {inside.shape[0]}"


def test_booster_learns_a_step_and_a_slope() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(5_000, 2))
    y = 2.0 * (x[:, 0] > 0.3) + x[:, 1]
    edges = _edges(x)
    model = _Booster.fit(_codes(x, edges), y, n_trees=200, depth=2, rate=0.2, min_leaf=10)
    grid = np.column_stack([np.linspace(-0.9, 0.9, 50), np.linspace(-0.9, 0.9, 50)])
    want = 2.0 * (grid[:, 0] > 0.3) + grid[:, 1]
    assert np.abs(model.predict(_codes(grid, edges)) - want).mean() < 0.08


def test_nan_features_state_round_trip_and_determinism() -> None:
    rng = np.random.default_rng(2)
    x, p, y = _draw(rng, 6_000, 0.0)
    x[rng.random(6_000) < 0.1, 1] = np.nan
    a = DLE(x, p, y, n_trees=20, seed=3)
    b = DLE(*_draw(rng, 2_000, 0.5), n_trees=5)
    b.load_state_dict(a.state_dict())
    xn, pn, _ = _draw(rng, 1_000, 0.3)
    xn[:50, 1] = np.nan
    assert (
        a.estimate(xn, pn)
        == b.estimate(xn, pn)
        == DLE(x, p, y, n_trees=20, seed=3).estimate(xn, pn)
    )
    abs_err, sq_err = a.predicted_errors(xn, pn)
    assert abs_err.shape == (1_000,) and np.all(sq_err >= 0)
    with pytest.raises(StateVersionError):
        b.load_state_dict({**a.state_dict(), "kind": "cbpe"})
    empty = a.estimate(np.zeros((0, 3)), np.zeros(0))
    assert empty.n == 0 and np.isnan(empty.mae.value)


REF = DLE(*_draw(np.random.default_rng(4), 400, 0.0), n_trees=3, n_folds=2)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 20),
    d=st.integers(1, 5),
    bad=st.sampled_from(["nan_pred", "inf_pred", "short_pred", "columns", "1d"]),
)
def test_invalid_inputs_are_refused_by_name(n: int, d: int, bad: str) -> None:
    x: np.ndarray = np.zeros((n, 3))
    p = np.zeros(n)
    if bad == "nan_pred":
        p[n // 2], match = np.nan, "y_pred has NaN"
    elif bad == "inf_pred":
        p[0], match = np.inf, "y_pred has NaN or infinite"
    elif bad == "short_pred":
        p, match = np.zeros(n + d), "y_pred has shape"
    elif bad == "columns":
        x, match = np.zeros((n, 3 + d)), "must have 3 columns"
    else:
        x, match = np.zeros(n), "features must be 2-d"
    with pytest.raises(ValueError, match=match):
        REF.estimate(x, p)
    y = np.zeros(400)
    y[n] = np.nan
    with pytest.raises(ValueError, match="y_true has NaN"):
        DLE(np.zeros((400, 2)), np.zeros(400), y)
    with pytest.raises(ValueError, match="y_true has shape"):
        DLE(np.zeros((400, 2)), np.zeros(400), np.zeros(400 + d))
    with pytest.raises(ValueError, match="reference rows: need at least"):
        DLE(np.zeros((n, 2)), np.zeros(n), np.zeros(n))


def test_invalid_parameters_are_refused() -> None:
    x, p, y = np.zeros((400, 2)), np.zeros(400), np.zeros(400)
    for kw, match in (
        ({"confidence": 1.0}, "confidence"),
        ({"n_folds": 1}, "n_folds"),
        ({"depth": 0}, "depth"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ):
        with pytest.raises(ValueError, match=match):
            DLE(x, p, y, **kw)
