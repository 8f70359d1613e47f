"""Detector cases a sampled mutation run found unchecked: the valid range an error names, the
smallest coarse grid WindowDrift accepts, the shapes its column-count error names,
Benjamini-Hochberg on a single p-value, an ADWIN state whose variances alone are misshapen, and
a two-category contingency test (one degree of freedom), Holm on a single p-value, the sketched
Wasserstein distance where the CDF gap keeps its sign, CBPE naming the parameter it refuses, and
a DomainClassifier confidence of 1 refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftd.detectors.adwin import ADWIN
from driftd.detectors.cbpe import CBPE
from driftd.detectors.multitest import benjamini_hochberg, holm
from driftd.detectors.multivariate import DomainClassifier
from driftd.detectors.sketch import contingency, wasserstein_from_counts
from driftd.detectors.window import WindowDrift
from driftd.errors import ConfigError


def test_a_negative_grace_period_names_the_valid_range() -> None:
    with pytest.raises(ValueError, match=r"^grace_period=-1 is invalid; valid: an integer >= 0$"):
        ADWIN(grace_period=-1)


def test_two_coarse_bins_are_enough_and_one_is_refused() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(500, 1))
    report = WindowDrift(ref, mode="sketch", n_bins=64, n_coarse=2).test(ref + 5.0)
    assert report.drift_detected
    with pytest.raises(ConfigError, match=r"n_coarse=1, n_bins=64"):
        WindowDrift(ref, mode="sketch", n_bins=64, n_coarse=1)


def test_a_window_with_other_columns_names_both_shapes() -> None:
    wd = WindowDrift(np.zeros((10, 2)))
    with pytest.raises(
        ValueError, match=r"^expected 2 numeric and 0 categorical columns, got 3 and 0$"
    ):
        wd.test(np.zeros((10, 3)))


def test_benjamini_hochberg_leaves_a_single_p_value_as_it_is() -> None:
    assert benjamini_hochberg([0.03]).tolist() == [0.03]
    q = benjamini_hochberg([math.nan, 0.2])
    assert math.isnan(q[0]) and q[1] == 0.2


def test_an_adwin_state_with_misshapen_variances_is_refused() -> None:
    det = ADWIN()
    det.update(np.random.default_rng(0).random(500))
    state = det.state_dict()
    fresh = ADWIN()
    fresh.load_state_dict(state)
    bad = {**state, "state": {**state["state"]}}
    bad["state"]["variances"] = np.asarray(bad["state"]["variances"])[:, :-1]
    with pytest.raises(ValueError, match="ADWIN state has buckets of shape"):
        ADWIN().load_state_dict(bad)


def test_two_categories_are_tested_with_one_degree_of_freedom() -> None:
    ref, cur = np.array([30, 10]), np.array([10, 30])
    stat, p, dof = contingency(ref, cur, g_test=False)
    assert stat == pytest.approx(20.0) and dof == 1 and p == pytest.approx(7.744216e-06, rel=1e-5)
    assert contingency(np.array([30, 0]), np.array([10, 0]), g_test=False) == (0.0, 1.0, 0)


def test_holm_leaves_a_single_p_value_as_it_is() -> None:
    assert holm([0.03]).tolist() == [0.03]


def test_sketched_wasserstein_integrates_same_sign_gaps_exactly() -> None:
    # reference uniform on [0, 1], current uniform on [1, 3]: quantiles u and 1 + 2u, W1 = 1.5
    edges = np.array([1.0, 2.0])
    w = wasserstein_from_counts(edges, np.array([4, 0, 0]), np.array([0, 2, 2]), 0.0, 3.0)
    assert w == pytest.approx(1.5)


def test_cbpe_names_each_count_parameter_it_refuses() -> None:
    scores, labels = np.linspace(0.05, 0.95, 40), np.arange(40) % 2
    with pytest.raises(ValueError, match=r"^n_bins must be an int >= 1, got 0$"):
        CBPE(scores, labels, n_bins=0)
    with pytest.raises(ValueError, match=r"^n_draws must be an int >= 1, got 0$"):
        CBPE(scores, labels, n_draws=0)


def test_a_domain_classifier_confidence_of_one_is_refused() -> None:
    ref = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ConfigError, match=r"confidence and alpha must be in \(0, 1\): 1\.0, 0\.05"):
        DomainClassifier(ref, confidence=1.0)
