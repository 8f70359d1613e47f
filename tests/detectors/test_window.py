"""WindowDrift: agreement with scipy in exact mode, sketch bounds, detection, false alarms."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from driftd.detectors import multitest, sketch, window
from driftd.detectors.window import CategoricalMethod, NumericMethod, WindowDrift
from driftd.errors import ConfigError

METHODS: tuple[NumericMethod, ...] = ("ks", "ad", "psi", "js", "wasserstein")


def _window(
    seed: int, n: int, shifts: dict[int, tuple[float, float]], k: int = 20
) -> npt.NDArray[np.float64]:
    x = np.random.default_rng(seed).normal(size=(n, k))
    for j, (shift, scale) in shifts.items():
        x[:, j] = x[:, j] * scale + shift
    return x


def test_doctests() -> None:
    for module in (window, sketch, multitest):
        assert doctest.testmod(module, raise_on_error=True).failed == 0


@pytest.mark.parametrize("seed", range(3))
def test_exact_mode_agrees_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(3000, 2))
    cur = rng.normal(size=(2000, 2)) * [1.0, 1.2] + [0.1, 0.0]
    ref[:100, 1] = cur[:100, 1]  # ties across samples
    for method in ("ks", "wasserstein", "ad"):
        report = WindowDrift(ref, method=method, mode="exact").test(cur)
        for j, f in enumerate(report.features):
            assert f.exact
            x, y = ref[:, j], cur[:, j]
            if method == "ks":
                ks = stats.ks_2samp(x, y, method="asymp")
                assert f.statistic == pytest.approx(ks.statistic, abs=1e-9)
                assert f.p_value == pytest.approx(ks.pvalue, abs=1e-9)
            elif method == "wasserstein":
                w = stats.wasserstein_distance(x, y)
                assert f.statistic == pytest.approx(w, abs=1e-9)
                assert f.effect_size == pytest.approx(w / np.std(x), abs=1e-9)
            else:
                with warnings.catch_warnings():  # scipy's table p-value is capped; unused here
                    warnings.simplefilter("ignore", UserWarning)
                    ad = stats.anderson_ksamp([x, y], variant="midrank")
                assert f.statistic == pytest.approx(ad.statistic, abs=1e-9)


@pytest.mark.parametrize("g_test", [False, True])
def test_categorical_agrees_with_scipy_and_reports_unseen(g_test: bool) -> None:
    rng = np.random.default_rng(0)
    ref = rng.choice(4, size=(5000, 1), p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice([0, 1, 2, 3, 7, -1], size=(4000, 1), p=[0.38, 0.3, 0.2, 0.1, 0.01, 0.01])
    wd = WindowDrift(None, categorical=ref, categorical_method="g" if g_test else "chi2")
    f = wd.test(None, cur).features[0]
    unseen = int(((cur == 7) | (cur == -1)).sum())
    assert f.unseen == unseen
    table = np.array(
        [
            np.append(np.bincount(ref[:, 0], minlength=4), 0),
            np.append(np.bincount(cur[(cur >= 0) & (cur < 4)], minlength=4), unseen),
        ]
    )
    res = stats.chi2_contingency(
        table, correction=False, lambda_="log-likelihood" if g_test else None
    )
    assert f.statistic == pytest.approx(res.statistic, abs=1e-9)
    assert f.p_value == pytest.approx(res.pvalue, abs=1e-9)
    assert f.effect_size == pytest.approx(np.sqrt(res.statistic / table.sum()), abs=1e-12)


def test_unseen_categories_alone_are_flagged() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 5, size=(20_000, 2))
    cur = rng.integers(0, 5, size=(20_000, 2))
    cur[:2000, 0] = 9  # 10% of the window is a category the reference never had
    report = WindowDrift(None, categorical=ref).test(None, cur)
    assert report.drifted == ("c0",)
    assert report["c0"].unseen == 2000
    assert report["c1"].unseen == 0


def test_sketch_ks_within_documented_bound() -> None:
    ref = _window(0, 30_000, {}, k=3)
    cur = _window(1, 40_000, {0: (0.05, 1.0), 1: (0.0, 1.1)}, k=3)
    exact = WindowDrift(ref, mode="exact").test(cur)
    sketched = WindowDrift(ref, mode="sketch").test(cur)
    for e, s in zip(exact.features, sketched.features, strict=True):
        assert not s.exact
        assert s.statistic <= e.statistic + 1e-12
        assert e.statistic <= s.statistic + s.bound + 1e-12
        assert s.bound < 0.002


def test_merged_histograms_equal_the_whole_window() -> None:
    ref = _window(0, 10_000, {}, k=2)
    cat_ref = np.random.default_rng(2).integers(0, 3, size=(10_000, 1))
    cur = _window(1, 9_000, {0: (0.3, 1.0)}, k=2)
    cat_cur = np.random.default_rng(3).integers(0, 4, size=(9_000, 1))
    wd = WindowDrift(ref, categorical=cat_ref, mode="sketch")
    parts = [wd.histogram(cur[i::3], cat_cur[i::3]) for i in range(3)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert wd.test_histogram(merged) == wd.test(cur, cat_cur)


@pytest.mark.parametrize("method", METHODS)
def test_detects_the_benchmark_shifts_on_50k_rows(method: NumericMethod) -> None:
    ref = _window(10, 50_000, {})
    cur = _window(11, 50_000, {0: (0.5, 1.0), 1: (0.0, 1.5), 2: (0.1, 1.0)})
    report = WindowDrift(ref, method=method, mode="sketch").test(cur)
    assert report.drifted == ("f0", "f1", "f2")


@pytest.mark.parametrize("mode", ["exact", "sketch"])
def test_negligible_shift_is_not_flagged_but_small_one_is(mode: str) -> None:
    for seed in range(3):
        ref = _window(100 + seed, 50_000, {}, k=2)
        cur = _window(200 + seed, 50_000, {0: (0.03, 1.0), 1: (0.1, 1.0)}, k=2)
        report = WindowDrift(ref, mode=mode).test(cur)  # type: ignore[arg-type]
        assert report["f0"].p_adjusted < 0.05  # significant, but below the effect floor
        assert report.drifted == ("f1",)


@pytest.mark.parametrize(
    ("correction", "floor", "mode"),
    [("holm", 0.0, "exact"), ("bh", 0.0, "exact"), ("holm", 0.0, "sketch"), ("holm", None, "auto")],
)
def test_false_alarm_rate_under_no_shift(correction: str, floor: float | None, mode: str) -> None:
    seeds = 40
    alarms = 0
    for seed in range(seeds):
        ref = _window(1000 + seed, 4000, {})
        cur = _window(2000 + seed, 4000, {})
        wd = WindowDrift(ref, correction=correction, floor=floor, mode=mode)  # type: ignore[arg-type]
        alarms += wd.test(cur).drift_detected
    # P(any false positive) <= 0.05: a count this high has probability < 1% at rate 0.05
    assert alarms <= stats.binom.ppf(0.99, seeds, 0.05)


def test_validation_lists_valid_values() -> None:
    ref = np.zeros((10, 1))
    with pytest.raises(ConfigError, match="ks, ad, psi, js, wasserstein"):
        WindowDrift(ref, method="t")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="holm, bh, none"):
        WindowDrift(ref, correction="bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="NaN"):
        WindowDrift(np.array([[np.nan], [1.0]]))
    with pytest.raises(ValueError, match="expected 1 numeric"):
        WindowDrift(ref).test(np.zeros((5, 2)))


@pytest.mark.parametrize("method", ["psi", "js"])
def test_categorical_psi_and_js(method: CategoricalMethod) -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice(3, size=(30_000, 2), p=[0.5, 0.3, 0.2])
    cur = np.column_stack(
        (
            rng.choice(3, size=30_000, p=[0.5, 0.3, 0.2]),
            rng.choice(3, size=30_000, p=[0.4, 0.3, 0.3]),
        )
    )
    report = WindowDrift(None, categorical=ref, categorical_method=method).test(None, cur)
    assert report.drifted == ("c1",)
    assert report["c1"].effect_size == report["c1"].statistic > window.DEFAULT_FLOORS[method]


def test_empty_window_is_refused() -> None:
    wd = WindowDrift(np.zeros((10, 1)))
    with pytest.raises(ValueError, match="empty"):
        wd.test(np.zeros((0, 1)))
