"""CBPE: the band covers the realised metric at its stated rate under covariate shift.

Binary (scores thresholded or the predicted classes given), multiclass (one-vs-rest calibration),
both ways of drawing the band (row-by-row simulation for small windows, the normal law of the
sufficient statistics for large ones), and input validation.
"""

from __future__ import annotations

from dataclasses import astuple
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from driftd.detectors import cbpe as cbpe_mod
from driftd.detectors.cbpe import CBPE, METRICS, MulticlassCBPE, _metrics, _ranks
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


@pytest.mark.parametrize("decimals", [None, 2])  # continuous scores, and scores with ties
def test_isotonic_calibrator_is_sklearns_and_keeps_the_label_sum(decimals: int | None) -> None:
    rng = np.random.default_rng(2)
    s, y = _draw(rng, 5_000, np.zeros(3))
    s = s if decimals is None else s.round(decimals)
    q = np.r_[rng.random(2_000), s[:200], -0.5, 1.5]  # unseen, seen and out-of-range scores
    want = IsotonicRegression(out_of_bounds="clip").fit(s, y).predict(q)
    assert CBPE(s, y, n_boot=0).calibrated(q) == pytest.approx(want, abs=1e-12)
    # The least-squares monotone fit keeps the label sum: what the estimates add up.
    assert CBPE(s, y, n_boot=0).calibrated(s).sum() == pytest.approx(y.sum(), rel=1e-12)
    k = rng.integers(0, 3, 5_000)
    p = rng.dirichlet(np.ones(3), 5_000)
    raw = MulticlassCBPE(p, k, n_boot=0)._curves[0](p[:, 0])
    want = IsotonicRegression(out_of_bounds="clip").fit(p[:, 0], k == 0).predict(p[:, 0])
    assert raw == pytest.approx(want, abs=1e-12)  # per class, before renormalising


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


def _covered(bands: np.ndarray, real: np.ndarray) -> np.ndarray:
    return (bands[:, :, 1] <= real) & (real <= bands[:, :, 2])


def _assert_rate(name: str, hits: np.ndarray, rate: float) -> None:
    p = binomtest(int(hits.sum()), hits.size, rate).pvalue
    assert p > 1e-3, f"{name}: coverage {hits.mean():.3f} over {hits.size} windows"


def test_y_pred_replaces_the_threshold() -> None:
    rng = np.random.default_rng(4)
    ref = _draw(rng, 20_000, np.zeros(3))
    s, _ = _draw(rng, 3_000, np.ones(3) * 0.2)
    default, at_03 = CBPE(*ref, n_draws=300), CBPE(*ref, threshold=0.3, n_draws=300)
    assert default.estimate(s, (s >= 0.5).astype(int)) == default.estimate(s)
    assert default.estimate(s, (s >= 0.3).astype(float)) == at_03.estimate(s)
    assert default.estimate(s, s >= 0.3).accuracy != default.estimate(s).accuracy


def test_band_covers_with_given_predictions() -> None:
    """Predictions that are not a threshold of the score (a second model's, say)."""
    hits = []
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        est = CBPE(*_draw(rng, 30_000, np.zeros(3)), confidence=CONFIDENCE, n_draws=400)
        s, y = _draw(rng, 2_000, rng.normal(0.0, 0.5, 3))
        pred = ((s >= 0.5) ^ (rng.random(s.size) < 0.15)).astype(np.float64)
        e = est.estimate(s, pred)
        bands = np.array([astuple(getattr(e, m)) for m in METRICS[:4]])[None]
        real = np.array(
            [
                skm.accuracy_score(y, pred),
                skm.precision_score(y, pred),
                skm.recall_score(y, pred),
                skm.f1_score(y, pred),
            ]
        )
        assert abs(e.accuracy.value - real[0]) < 0.04
        hits.append(_covered(bands, real[None])[0])
    for name, col in zip(METRICS, np.array(hits).T, strict=False):
        _assert_rate(name, col, CONFIDENCE)


@pytest.mark.parametrize("n", [400, 3_000])
def test_simulated_and_normal_bands_agree(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    rng = np.random.default_rng(5)
    est = CBPE(*_draw(rng, 20_000, np.zeros(3)), n_draws=4_000)
    s, _ = _draw(rng, n, np.ones(3) * 0.3)
    monkeypatch.setattr(cbpe_mod, "EXACT_BELOW", 0)
    normal = est.estimate(s)
    monkeypatch.setattr(cbpe_mod, "EXACT_BELOW", 10**9)
    exact = est.estimate(s)
    for m in METRICS:
        a, b = getattr(normal, m), getattr(exact, m)
        assert a.value == b.value
        width = b.upper - b.lower
        assert abs(a.lower - b.lower) < 0.1 * width and abs(a.upper - b.upper) < 0.1 * width, m


K = 3
WK = np.array([[1.2, -0.5, 0.3], [-0.4, 1.0, -0.8], [0.0, 0.3, 1.1]])


def _mc_draw(rng: np.random.Generator, n: int, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated class probabilities of a softmax model and the labels drawn from them."""
    z = rng.normal(mu, 1.0, size=(n, 3)) @ WK
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(0, K - 1)
    return p, y


def _mc_realised(p: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    kw = {"average": "macro", "zero_division": 0}
    return np.array(
        [
            skm.accuracy_score(y, pred),
            skm.precision_score(y, pred, **kw),
            skm.recall_score(y, pred, **kw),
            skm.f1_score(y, pred, **kw),
            skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        ]
    )


def test_multiclass_band_covers_the_realised_metric_at_the_stated_rate() -> None:
    """Both band paths: 600-row windows simulate labels, 2,500-row ones use the normal law."""
    runs = []
    for seed in range(30):
        rng = np.random.default_rng(200 + seed)
        est = MulticlassCBPE(
            *_mc_draw(rng, 30_000, np.zeros(3)), confidence=CONFIDENCE, n_draws=400
        )
        for n in (600, 2_500):
            p, y = _mc_draw(rng, n, rng.normal(0.0, 0.5, 3))
            e = est.estimate(p)
            bands = np.array([astuple(getattr(e, m)) for m in METRICS])
            runs.append((bands, _mc_realised(p, y, p.argmax(axis=1))))
    bands = np.array([b for b, _ in runs])
    real = np.array([r for _, r in runs])
    inside = _covered(bands, real)
    mae = np.abs(bands[:, :, 0] - real).mean(axis=0)
    for j, name in enumerate(METRICS):
        _assert_rate(name, inside[:, j], CONFIDENCE)
        assert mae[j] < 0.02, f"{name}: mean absolute error {mae[j]:.4f}"


def test_multiclass_classes_y_pred_and_state() -> None:
    rng = np.random.default_rng(6)
    p, y = _mc_draw(rng, 10_000, np.zeros(3))
    names = np.array(["a", "b", "c"])
    est = MulticlassCBPE(p, names[y], n_draws=200)
    assert est.classes == ["a", "b", "c"]
    q, _ = _mc_draw(rng, 1_500, np.ones(3) * 0.3)
    assert est.estimate(q) == est.estimate(q, names[q.argmax(axis=1)])
    assert np.allclose(est.calibrated(q).sum(axis=1), 1.0)
    assert np.abs(est.calibrated(q) - q).mean() < 0.03  # calibrated scores stay as they are
    other = MulticlassCBPE(p[:500], names[y[:500]])
    other.load_state_dict(est.state_dict())
    assert other.estimate(q) == est.estimate(q)
    with pytest.raises(StateVersionError):
        other.load_state_dict({**est.state_dict(), "kind": "cbpe"})
    reordered = MulticlassCBPE(p[:, ::-1], names[y], classes=["c", "b", "a"], n_draws=200)
    assert reordered.estimate(q[:, ::-1]).f1.value == pytest.approx(est.estimate(q).f1.value)
    skipped = est.estimate(np.vstack([q, np.full((4, 3), np.nan)]))
    assert (skipped.n, skipped.skipped) == (1_500, 4)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    extra=st.integers(1, 3),
    bad=st.sampled_from(["short", "nan", "two", "unknown"]),
)
def test_binary_estimate_refuses_bad_y_pred(n: int, extra: int, bad: str) -> None:
    s = np.linspace(0.0, 1.0, n)
    pred = (s >= 0.5).astype(np.float64)
    if bad == "short":
        pred, match = np.concatenate([pred, np.zeros(extra)]), "y_pred has shape"
    elif bad == "nan":
        pred[extra % n], match = np.nan, "y_pred has NaN"
    elif bad == "two":
        pred[extra % n], match = 2.0, "y_pred must be 0/1"
    else:
        s, match = s[:, None] * np.ones(extra + 1), "scores must be 1-d"
    with pytest.raises(ValueError, match=match):
        BINARY.estimate(s, pred)


BINARY = CBPE(np.linspace(0, 1, 200), (np.arange(200) % 3 == 0).astype(float), n_draws=10)
MULTI = MulticlassCBPE(np.eye(3)[np.arange(300) % 3] * 0.8 + 0.1 / 1.5, np.arange(300) % 3)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    cols=st.integers(1, 5),
    label=st.sampled_from([3, -1, 7.5, float("nan"), "x"]),
)
def test_multiclass_refuses_bad_shapes_and_unknown_classes(
    n: int, cols: int, label: object
) -> None:
    scores = np.full((n, 3), 1.0 / 3.0)
    pred = np.array([0] * (n - 1) + [label], dtype=object)
    with pytest.raises(ValueError, match="y_pred hold unknown classes"):
        MULTI.estimate(scores, pred)
    if cols != 3:
        with pytest.raises(ValueError, match=r"scores must be \(n, 3\)"):
            MULTI.estimate(np.ones((n, cols)))
    with pytest.raises(ValueError, match="y_pred has shape"):
        MULTI.estimate(scores, np.zeros(n + 1))
    with pytest.raises(ValueError, match="reference labels hold unknown classes"):
        MulticlassCBPE(
            np.ones((n + 3, 3)) / 3, np.array([0, 1, 2] + [label] * n), classes=[0, 1, 2]
        )
    with pytest.raises(ValueError, match="reference scores must be"):
        MulticlassCBPE(np.ones(n + 3), np.arange(n + 3) % 3)
    with pytest.raises(ValueError, match="must be 1-d"):
        CBPE(np.ones((n + 3, 2)), np.arange(n + 3) % 2)
