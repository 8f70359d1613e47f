"""OnlineMMD: calibrated run length, detection delay, batch invariance, state, arguments."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from driftd.detectors.base import Alarm
from driftd.detectors.online_mmd import OnlineMMD
from driftd.errors import StateVersionError


@cache
def _reference(d: int) -> np.ndarray:
    return np.random.default_rng(1234).normal(size=(1000, d))


def _global(alarms: list[Alarm], offset: int) -> list[tuple[int, float]]:
    return [(offset + a.index, a.statistic) for a in alarms]


def _run(det: OnlineMMD, x: np.ndarray, batch: int) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    for start in range(0, len(x), batch):
        out += _global(det.update(x[start : start + batch]), start)
    return out


def test_false_alarm_rate_matches_ert() -> None:
    # ert 200 over 40,000 stationary rows: about 200 alarms (Poisson sd 14, plus the
    # quantile noise of 4,000 streams); a loose band, seeded
    det = OnlineMMD(_reference(3), window=20, ert=200, n_bootstraps=4000, seed=3)
    x = np.random.default_rng(7).normal(size=(40_000, 3))
    alarms = det.update(x)
    assert 130 <= len(alarms) <= 300
    gaps = np.diff([-1] + [a.index for a in alarms])
    assert 130 <= gaps.mean() <= 300


def test_detects_half_sd_shift_in_one_of_ten_dimensions() -> None:
    det = OnlineMMD(_reference(10), window=50, ert=1000, n_bootstraps=10_000, seed=0)
    fresh = det.state_dict()
    delays = []
    for seed in range(6):
        det.load_state_dict(fresh)
        x = np.random.default_rng(100 + seed).normal(size=(1500, 10))
        x[300:, 0] += 0.5
        after = [a.index - 300 for a in det.update(x) if a.index >= 300]
        delays.append(after[0] if after else np.inf)
    assert np.median(delays) <= 150
    assert sum(np.isfinite(delays)) >= 5


def test_statistic_is_the_unbiased_mmd_of_the_window() -> None:
    ref = _reference(2)[:200]
    det = OnlineMMD(ref, window=5, ert=20, n_bootstraps=200, bandwidth=1.5, seed=0)
    state = det.state_dict()["state"]
    held = state["held"]
    rest = np.delete(ref, held, axis=0)
    x = np.random.default_rng(0).normal(size=(5, 2)) + 3.0
    alarms = det.update(x)
    assert alarms and alarms[0].index < 5  # a 3-sd jump fires within a window
    i = alarms[0].index
    window = np.vstack((state["window_rows"], x))[i + 1 : i + 6]

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * 1.5**2))

    n, w = len(rest), len(window)
    expected = (
        (k(rest, rest).sum() - n) / (n * (n - 1))
        + (k(window, window).sum() - w) / (w * (w - 1))
        - 2 * k(rest, window).mean()
    )
    assert alarms[0].statistic == pytest.approx(expected, rel=1e-9)
    assert alarms[0].threshold == det.thresholds[i]


def test_batch_split_invariance() -> None:
    x = np.random.default_rng(5).normal(size=(2000, 4))
    x[1000:, 1] += 1.0
    results = []
    for batch in (1, 7, 100, 2000):
        det = OnlineMMD(_reference(4), window=15, ert=100, n_bootstraps=2000, seed=2)
        results.append(_run(det, x, batch))
    assert len(results[0]) >= 3  # false alarms before the change and detections after it
    for other in results[1:]:
        assert [i for i, _ in other] == [i for i, _ in results[0]]
        np.testing.assert_allclose([s for _, s in other], [s for _, s in results[0]], rtol=1e-9)


def test_resets_after_detection() -> None:
    det = OnlineMMD(_reference(2), window=10, ert=100, n_bootstraps=2000, seed=0)
    x = np.random.default_rng(0).normal(size=(200, 2)) + 4.0
    alarms = det.update(x)
    # each detection re-fills the window with reference rows: the next needs new rows again
    assert len(alarms) >= 2
    gaps = np.diff([-1] + [a.index for a in alarms])
    # the step count restarts: the threshold is the one for the rows seen since the reset
    assert [a.threshold for a in alarms] == [det.thresholds[min(g - 1, 9)] for g in gaps]
    assert gaps.max() <= 10
    assert det.state_dict()["state"]["resets"] == len(alarms)


def test_state_round_trip() -> None:
    x = np.random.default_rng(9).normal(size=(1200, 3))
    x[600:, 2] += 1.0
    whole = _run(OnlineMMD(_reference(3), window=12, ert=100, n_bootstraps=2000, seed=4), x, 1200)
    first = OnlineMMD(_reference(3), window=12, ert=100, n_bootstraps=2000, seed=4)
    part = _global(first.update(x[:500]), 0)
    second = OnlineMMD(_reference(3), window=12, ert=100, n_bootstraps=2000, seed=4)
    second.load_state_dict(first.state_dict())
    part += _global(second.update(x[500:]), 500)
    assert [i for i, _ in part] == [i for i, _ in whole]
    np.testing.assert_allclose([s for _, s in part], [s for _, s in whole], rtol=1e-9)


def test_state_rejects_foreign_and_mismatched() -> None:
    det = OnlineMMD(_reference(3), window=12, ert=100, n_bootstraps=2000, seed=4)
    state = det.state_dict()
    with pytest.raises(StateVersionError):
        det.load_state_dict({**state, "v": 2})
    with pytest.raises(StateVersionError):
        det.load_state_dict({**state, "kind": "driftd.detectors.KSWIN"})
    with pytest.raises(ValueError, match="does not fit"):
        OnlineMMD(_reference(3), window=13, ert=100, n_bootstraps=2000).load_state_dict(state)
    with pytest.raises(ValueError, match="calibrated"):
        OnlineMMD(_reference(3), window=12, ert=50, n_bootstraps=2000).load_state_dict(state)


def test_input_is_not_modified() -> None:
    det = OnlineMMD(_reference(3), window=12, ert=100, n_bootstraps=2000, seed=4)
    x = np.random.default_rng(1).normal(size=(300, 3))
    before = x.copy()
    det.update(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 1},
        {"window": 2.5},
        {"window": 600},  # needs 2 * window + 1 reference rows
        {"ert": 1.0},
        {"ert": -5},
        {"ert": 100, "n_bootstraps": 150},
        {"bandwidth": 0.0},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        OnlineMMD(_reference(2), **kwargs)  # type: ignore[arg-type]


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        OnlineMMD(np.zeros(100))
    with pytest.raises(ValueError):
        OnlineMMD(np.full((100, 2), np.nan), window=5, ert=10)
    det = OnlineMMD(_reference(2), window=5, ert=10, n_bootstraps=100)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        det.update(np.zeros((4, 3)))
    with pytest.raises(ValueError):
        det.update(np.zeros(4))
