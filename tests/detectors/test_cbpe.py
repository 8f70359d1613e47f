"""CBPE: the band covers the realised metric at its stated rate under covariate shift."""

from __future__ import annotations

from dataclasses import astuple
from typing import Literal

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from driftd.detectors.cbpe import CBPE, METRICS, _metrics, _ranks
from driftd.errors import StateVersionError

Calibration = Literal["isotonic", "histogram"]
SEEDS = range(40)
CONFIDENCE = 0.9
W = np.array([1.5, -1.0, 0.7])


def _draw(rng: np.random.Generator, n: int, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a miscalibrated model (monotone in the true logit) and the labels."""
    z = rng.normal(mu, 1.0, size=(n, 3)) @ W - 0.3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-(0.6 * z + 0.4)))
    return s, y


def _realised(s: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    pred = (s >= threshold).astype(np.float64)
    return np.array(
        [
            skm.accuracy_score(y, pred),
            skm.precision_score(y, pred, zero_division=np.nan),
            skm.recall_score(y, pred),
            skm.f1_score(y, pred),
            skm.roc_auc_score(y, s),
        ]
    )


def simulate(
    seed: int, calibration: Calibration = "isotonic"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per shifted window of one seeded stream: (value, lower, upper) per metric, and realised."""
    rng = np.random.default_rng(seed)
    est = CBPE(
        *_draw(rng, 50_000, np.zeros(3)),
        calibration=calibration,
        confidence=CONFIDENCE,
        n_draws=500,
    )
    out = []
    for scale in (0.4, 0.8):  # covariate shift: the inputs move, P(y | x) stays
        s, y = _draw(rng, 2_000, rng.normal(0.0, scale, 3))
        e = est.estimate(s)  # before the labels arrive
        bands = np.array([astuple(getattr(e, m)) for m in METRICS])
        out.append((bands, _realised(s, y)))  # the labels arrive later
    return out


def coverage_and_error(
    calibration: Calibration = "isotonic", seeds: range = SEEDS
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per metric: fraction of windows whose realised value is in the band, and the MAE."""
    runs = [r for seed in seeds for r in simulate(seed, calibration)]
    bands = np.array([b for b, _ in runs])
    real = np.array([r for _, r in runs])
    inside = (bands[:, :, 1] <= real) & (real <= bands[:, :, 2])
    return inside.mean(axis=0), np.abs(bands[:, :, 0] - real).mean(axis=0), len(runs)


def test_band_covers_the_realised_metric_at_the_stated_rate() -> None:
    coverage, mae, trials = coverage_and_error()
    for name, c, err in zip(METRICS, coverage, mae, strict=True):
        p = binomtest(round(c * trials), trials, CONFIDENCE).pvalue
        assert p > 1e-3, f"{name}: coverage {c:.3f} over {trials} windows"
        assert err < 0.02, f"{name}: mean absolute error {err:.4f}"


def test_histogram_calibration_estimates_closely_too() -> None:
    coverage, mae, _ = coverage_and_error("histogram", range(20))
    assert np.all(mae < 0.03), mae
    assert np.all(coverage > 0.7), coverage


def test_calibrator_recovers_p_of_y_given_score() -> None:
    rng = np.random.default_rng(0)
    est = CBPE(*_draw(rng, 50_000, np.zeros(3)))
    s = np.linspace(0.1, 0.9, 81)
    truth = 1.0 / (1.0 + np.exp(-(np.log(s / (1 - s)) - 0.4) / 0.6))
    assert np.abs(est.calibrated(s) - truth).mean() < 0.02
    assert np.all(np.diff(est.calibrated(s)) >= 0)  # isotonic


def test_simulated_metrics_equal_sklearn_for_one_labelling() -> None:
    rng = np.random.default_rng(1)
    s, y = _draw(rng, 3_000, np.zeros(3))
    s = s.round(2)  # ties, for ROC AUC
    got = _metrics(y[None, :], (s >= 0.5).astype(np.float64), _ranks(s))[:, 0]
    assert got == pytest.approx(_realised(s, y), abs=1e-9)


def test_nan_scores_are_skipped_and_calls_are_deterministic() -> None:
    rng = np.random.default_rng(2)
    est = CBPE(*_draw(rng, 10_000, np.zeros(3)), n_draws=200)
    s, _ = _draw(rng, 1_000, np.ones(3) * 0.3)
    with_nan = np.concatenate([s, np.full(10, np.nan)])
    a, b = est.estimate(s), est.estimate(with_nan)
    assert (b.n, b.skipped) == (1_000, 10)
    assert astuple(a)[2:] == astuple(b)[2:]
    assert np.isnan(with_nan).sum() == 10  # input not modified
    empty = est.estimate(np.full(3, np.nan))
    assert empty.n == 0 and np.isnan(empty.accuracy.value)


def test_state_round_trip_gives_the_same_estimates() -> None:
    rng = np.random.default_rng(3)
    for calibration in ("isotonic", "histogram"):
        a = CBPE(*_draw(rng, 10_000, np.zeros(3)), calibration=calibration, n_draws=100, seed=9)
        b = CBPE(*_draw(rng, 500, np.ones(3)))
        b.load_state_dict(a.state_dict())
        s, _ = _draw(rng, 500, np.zeros(3))
        assert a.estimate(s) == b.estimate(s)
        with pytest.raises(StateVersionError):
            b.load_state_dict({**a.state_dict(), "kind": "quality.brier"})


def test_invalid_parameters_are_refused() -> None:
    s, y = np.array([0.1, 0.9]), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="'isotonic' or 'histogram'"):
        CBPE(s, y, calibration="platt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        CBPE(s, y, confidence=1.0)
    with pytest.raises(ValueError, match="n_draws"):
        CBPE(s, y, n_draws=0)
    with pytest.raises(ValueError, match="both classes"):
        CBPE(s, np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="2 reference scores but 3"):
        CBPE(s, np.array([0.0, 1.0, 1.0]))
