"""Quality metrics equal scikit-learn's, merge like one pass, and round-trip their state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from driftd.detectors.quality import (
    ROCAUC,
    BrierScore,
    CalibrationError,
    ConfusionMatrix,
    LogLoss,
    RegressionErrors,
)
from driftd.errors import StateVersionError

Acc = Any  # any accumulator in quality.py


def _binary(seed: int, n: int = 5_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.float64)
    s = np.clip(rng.beta(2, 5, n) + 0.3 * y, 0.001, 0.999).round(3)  # ties on purpose
    return y, s


def _multiclass(seed: int, k: int = 4, n: int = 5_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.float64)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n)).astype(np.float64)
    return y, p


@pytest.mark.parametrize("seed", range(3))
def test_binary_classification_equals_sklearn(seed: int) -> None:
    y, s = _binary(seed)
    pred = (s >= 0.5).astype(np.float64)
    cm = ConfusionMatrix(2)
    cm.update(y, pred)
    r = cm.result()
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert r.precision == pytest.approx(skm.precision_score(y, pred), abs=1e-9)
    assert r.recall == pytest.approx(skm.recall_score(y, pred), abs=1e-9)
    assert r.f1 == pytest.approx(skm.f1_score(y, pred), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_macro_classification_equals_sklearn(seed: int) -> None:
    y, p = _multiclass(seed)
    p[p == 3] = 2  # class 3 is in the labels only: it scores 0, as in scikit-learn
    cm = ConfusionMatrix(5, average="macro")  # class 4 never appears: not averaged
    cm.update(y, p)
    r = cm.result()
    kw: dict[str, Any] = {"average": "macro", "zero_division": 0}
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, p), abs=1e-9)
    assert r.precision == pytest.approx(skm.precision_score(y, p, **kw), abs=1e-9)
    assert r.recall == pytest.approx(skm.recall_score(y, p, **kw), abs=1e-9)
    assert r.f1 == pytest.approx(skm.f1_score(y, p, **kw), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_score_metrics_equal_sklearn(seed: int) -> None:
    y, s = _binary(seed)
    auc, ll, brier = ROCAUC(mode="exact"), LogLoss(), BrierScore()
    for m in (auc, ll, brier):
        m.update(y, s)
    assert auc.result() == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
    assert ll.result() == pytest.approx(skm.log_loss(y, s), abs=1e-9)
    assert brier.result() == pytest.approx(skm.brier_score_loss(y, s), abs=1e-9)


def test_regression_equals_sklearn() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(size=3_000)
    p = y + rng.standard_t(3, size=3_000)
    m = RegressionErrors()
    m.update(y, p)
    assert m.result().mae == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-9)
    assert m.result().rmse == pytest.approx(skm.root_mean_squared_error(y, p), abs=1e-9)


def test_calibration_error_equals_reference_formula() -> None:
    y, s = _binary(3)
    s[:5] = [0.0, 1.0, 0.1, 0.5, 0.999]  # edges: 1.0 belongs to the last bin
    m = CalibrationError(n_bins=10)
    m.update(y, s)
    b = np.minimum(np.floor(s * 10).astype(int), 9)
    expected = sum(
        (b == k).mean() * abs(y[b == k].mean() - s[b == k].mean())
        for k in range(10)
        if (b == k).any()
    )
    assert m.result() == pytest.approx(expected, abs=1e-12)
    assert m.result() > 0.05  # the synthetic scores are miscalibrated


@pytest.mark.parametrize("resolution", [100, 1_000, 10_000])
def test_histogram_auc_is_within_its_bound(resolution: int) -> None:
    rng = np.random.default_rng(resolution)
    y = rng.integers(0, 2, 20_000).astype(np.float64)
    s = 1 / (1 + np.exp(-(rng.normal(size=y.size) + y)))  # continuous: no exact ties
    h = ROCAUC(resolution=resolution)
    h.update(y, s)
    exact = skm.roc_auc_score(y, s)
    assert abs(h.result() - exact) <= h.error_bound() + 1e-12
    assert h.error_bound() < 0.5 / resolution * 2  # about one bin's share of pairs


FACTORIES: dict[str, tuple[Callable[[], Acc], Callable[[int], tuple[np.ndarray, np.ndarray]]]] = {
    "confusion": (lambda: ConfusionMatrix(4, "macro"), _multiclass),
    "confusion_binary": (lambda: ConfusionMatrix(2), lambda seed: _multiclass(seed, k=2)),
    "log_loss": (LogLoss, _binary),
    "brier": (BrierScore, _binary),
    "ece": (lambda: CalibrationError(15), _binary),
    "regression": (RegressionErrors, _binary),
    "auc_histogram": (lambda: ROCAUC(resolution=500), _binary),
    "auc_exact": (lambda: ROCAUC(mode="exact"), _binary),
}


def _same_result(a: Acc, b: Acc) -> None:
    ra, rb = a.result(), b.result()
    va, vb = ([ra], [rb]) if isinstance(ra, float) else (astuple(ra), astuple(rb))
    assert va == pytest.approx(vb, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_merge_of_partitions_equals_one_pass(name: str) -> None:
    make, data = FACTORIES[name]
    y, p = data(11)
    whole = make()
    whole.update(y, p)
    parts = [make() for _ in range(4)]
    for part, idx in zip(parts, np.array_split(np.arange(y.size), 4), strict=True):
        part.update(y[idx], p[idx])
    merged = make()
    for part in parts:
        merged.merge(part)
    _same_result(whole, merged)
    if hasattr(merged, "counts"):
        assert np.array_equal(merged.counts, whole.counts)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_updates_in_batches_equal_one_pass(name: str) -> None:
    make, data = FACTORIES[name]
    y, p = data(13)
    whole = make()
    whole.update(y, p)
    batched = make()
    for idx in np.array_split(np.arange(y.size), 5):
        batched.update(y[idx], p[idx])
    _same_result(whole, batched)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_round_trip(name: str) -> None:
    make, data = FACTORIES[name]
    y, p = data(5)
    a = make()
    a.update(y[:2_000], p[:2_000])
    b = make()
    b.load_state_dict(a.state_dict())
    _same_result(a, b)
    a.update(y[2_000:], p[2_000:])  # the restored copy goes on identically
    b.update(y[2_000:], p[2_000:])
    _same_result(a, b)
    state = a.state_dict()
    assert state["v"] == 1
    with pytest.raises(StateVersionError):
        b.load_state_dict({**state, "v": 2})


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_empty_is_nan_and_bad_rows_are_skipped(name: str) -> None:
    make, data = FACTORIES[name]
    r = make().result()
    assert all(np.isnan(v) for v in ([r] if isinstance(r, float) else astuple(r)))
    y, p = data(1)
    y2, p2 = y.copy(), p.copy()
    y2[::10], p2[5::10] = np.nan, np.nan
    ok = np.isfinite(y2) & np.isfinite(p2)
    clean, dirty = make(), make()
    clean.update(y[ok], p[ok])
    dirty.update(y2, p2)
    _same_result(clean, dirty)
    assert dirty.skipped == 1_000
    assert np.isnan(y2).sum() == 500  # the caller's arrays are not modified


def test_class_codes_outside_the_range_are_skipped() -> None:
    cm = ConfusionMatrix(3, "macro")
    cm.update([0.0, 5.0, 1.5, -1.0, 2.0], [0.0, 0.0, 1.0, 1.0, 2.0])
    assert cm.skipped == 3
    assert cm.counts.sum() == 2 and cm.result().accuracy == 1.0


def test_invalid_parameters_and_merges_are_refused() -> None:
    with pytest.raises(ValueError, match="'binary', 'macro'"):
        ConfusionMatrix(3, average="micro")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_classes=2"):
        ConfusionMatrix(3)
    with pytest.raises(ValueError, match="'histogram', 'exact'"):
        ROCAUC(mode="trapezoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_bins"):
        CalibrationError(0)
    with pytest.raises(ValueError, match="different"):
        ROCAUC(resolution=10).merge(ROCAUC(resolution=20))
    with pytest.raises(ValueError, match="different"):
        LogLoss().merge(BrierScore())
