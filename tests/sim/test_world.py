"""The simulated world: deterministic given the seed, and its concept changes at drift_at."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from driftd.sim.world import World

DRIFT = 1_000.0


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b, c = World(6, 3, DRIFT), World(6, 3, DRIFT), World(6, 4, DRIFT)
    xa, xb, xc = a.features(500, 10.0), b.features(500, 10.0), c.features(500, 10.0)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(a.labels(xa, 10.0), b.labels(xb, 10.0))
    assert not np.array_equal(xa, xc)
    assert not np.array_equal(a.w_before, c.w_before)


def test_columns_arrays_and_feature_dicts_agree() -> None:
    w = World(4, 0, None)
    x = w.features(50, np.linspace(0, 10, 50))
    assert x.shape == (50, 6) and w.columns == ["f0", "f1", "f2", "f3", "country", "device"]
    arrays = w.arrays(x, 5.0)
    assert arrays.numeric.shape == (50, 4) and arrays.categorical.shape == (50, 2)
    assert arrays.vocabularies == [list(v) for v in w.categories.values()]
    rows = w.feature_dicts(x)
    assert rows[7]["f2"] == x[7, 2]
    assert rows[7]["country"] == w.categories["country"][int(x[7, 4])]
    assert set(rows[0]) == set(w.columns)


def test_numeric_only_world_and_custom_names() -> None:
    w = World(3, 0, None, categorical=False, numeric_names=["a", "b", "c"])
    x = w.features(10, 0.0)
    assert x.shape == (10, 3) and w.columns == ["a", "b", "c"]
    assert set(w.feature_dicts(x)[0]) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="numeric names"):
        World(3, 0, None, numeric_names=["a"])
    with pytest.raises(ValueError, match="n_features"):
        World(0)


def test_no_drift_point_means_a_stationary_concept() -> None:
    w = World(5, 1, None)
    x = w.features(100, 0.0)
    np.testing.assert_array_equal(w.logit(x, 0.0), w.logit(x, 1e9))
    assert not w.drifted(1e9, 3).any()


def test_drift_changes_the_concept_and_the_inputs_at_drift_at() -> None:
    w = World(8, 7, DRIFT)
    t = np.array([DRIFT - 1e-3, DRIFT, DRIFT + 1.0])
    assert w.drifted(t, 3).tolist() == [False, True, True]
    before = w.features(20_000, DRIFT - 1.0)
    after = w.features(20_000, DRIFT + 1.0)
    assert abs(before[:, 0].mean()) < 0.05 and abs(after[:, 0].mean() - 0.5) < 0.05
    assert after[:, 1].std() == pytest.approx(1.5, rel=0.05)
    x = before[:100]
    assert not np.allclose(w.logit(x, DRIFT - 1.0), w.logit(x, DRIFT + 1.0))


def test_a_model_fit_before_the_drift_does_worse_after_it() -> None:
    w = World(8, 11, DRIFT)
    x_fit = w.features(6000, DRIFT - 500.0)
    y_fit = w.labels(x_fit, DRIFT - 500.0)
    onehot = [
        np.eye(len(v))[x_fit[:, 8 + j].astype(int)] for j, v in enumerate(w.categories.values())
    ]
    clf = LogisticRegression(max_iter=1000).fit(np.hstack([x_fit[:, :8], *onehot]), y_fit)

    def accuracy(t: float) -> float:
        x = w.features(6000, t)
        y = w.labels(x, t)
        cats = [
            np.eye(len(v))[x[:, 8 + j].astype(int)] for j, v in enumerate(w.categories.values())
        ]
        return float((clf.predict(np.hstack([x[:, :8], *cats])) == y).mean())

    before, after = accuracy(DRIFT - 10.0), accuracy(DRIFT + 10.0)
    assert before > 0.65 and after < before - 0.1, (before, after)
    # The exact pre-drift concept loses the same way; the post-drift one recovers.
    x = w.features(6000, DRIFT + 10.0)
    y = w.labels(x, DRIFT + 10.0)
    old = (w.concept_scorer(False)(w.arrays(x)) > 0.5) == y
    new = (w.concept_scorer(True)(w.arrays(x)) > 0.5) == y
    assert new.mean() > old.mean() + 0.1
