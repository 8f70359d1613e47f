"""Every streaming detector's live ``statistic``/``threshold`` (base.Detector's contract).

Fed one value at a time across a change: the properties are finite once the detector's test is
defined, a drift alarm reports exactly (bit for bit) what the properties give on the state
holding the alarming value just before the detector resets, the properties describe the fresh
state after it, the statistic is past its threshold exactly at the alarms where that is the
decision rule, and both survive ``state_dict``/``load_state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from driftd.detectors import ADWIN, CUSUM, DDM, EDDM, HDDM_A, HDDM_W, KSWIN, PageHinkley
from driftd.detectors.standardized import Standardized

F64 = npt.NDArray[np.float64]


def _gauss(seed: int) -> F64:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, 1500), rng.normal(1.5, 1, 1500)])


def _bern(seed: int) -> F64:
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(4000) < 2000, 0.1, 0.4)
    return (rng.random(4000) < p).astype(np.float64)


def _bern_down(seed: int) -> F64:
    return 1.0 - _bern(seed)


# name -> (factory, stream, warm-up check on the detector: its test is defined now, or None
# where the statistic should be finite after every value from the first, crossing rule:
# "above" / "at_or_above" / "below" where crossing the threshold is exactly the drift rule)
CASES: dict[str, tuple[Callable[[], Any], Callable[[int], F64], Callable[[Any], bool], str]] = {
    "PageHinkley": (
        lambda: PageHinkley(delta=0.25, threshold=20.0),
        _gauss,
        lambda d: d._n >= d.min_instances,
        "above",
    ),
    "CUSUM": (lambda: CUSUM(warm_start=50), _gauss, lambda d: d._mu is not None, "above"),
    "CUSUM_up_fixed": (
        lambda: CUSUM(target=0.0, scale=1.0, mode="up"),
        _gauss,
        lambda d: True,
        "above",
    ),
    "ADWIN": (ADWIN, _gauss, lambda d: d.width > d.grace_period + 2 * d.min_window_length, ""),
    "KSWIN": (
        lambda: KSWIN(alpha=0.0001, seed=1),
        _gauss,
        lambda d: d._ints[0] == d.window_size,
        "at_or_above",
    ),
    "DDM": (DDM, _bern, lambda d: d._n > d.warm_start, "above"),
    "EDDM": (EDDM, _bern, lambda d: d._k > d.warm_start, "below"),
    "HDDM_A": (HDDM_A, _bern, lambda d: d._zn > 0, ""),
    "HDDM_A_two": (lambda: HDDM_A(two_sided_test=True), _bern_down, lambda d: d._zn > 0, ""),
    "HDDM_W": (HDDM_W, _bern, lambda d: d._s[1] != 0.0, ""),
    "HDDM_W_two": (lambda: HDDM_W(two_sided_test=True), _bern_down, lambda d: d._s[1] != 0, ""),
    "Standardized": (
        lambda: Standardized(PageHinkley(delta=0.25, threshold=20.0), warmup=200),
        _gauss,
        lambda d: d.ready and d.inner._n >= d.inner.min_instances,
        "above",
    ),
}


def _crossed(stat: float, thr: float, rule: str) -> bool:
    if rule == "above":
        return stat > thr
    if rule == "at_or_above":
        return stat >= thr
    return stat < thr


def _capture_resets(det: Any, seen: list[tuple[float, float]]) -> None:
    """Record the outer detector's properties whenever its inner algorithm resets itself."""
    core = det.inner if isinstance(det, Standardized) else det
    reset = core.reset

    def spy() -> None:
        seen.append((det.statistic, det.threshold))
        reset()

    core.reset = spy  # type: ignore[method-assign]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_alarm_reports_the_properties_before_the_reset(name: str, seed: int) -> None:
    make, stream, warm, rule = CASES[name]
    det = make()
    seen: list[tuple[float, float]] = []
    kernel_reset = isinstance(det, ADWIN | KSWIN)  # resets inside a compiled kernel
    if not kernel_reset:
        _capture_resets(det, seen)
    drifts = 0
    for x in stream(seed).tolist():
        before = det.state_dict() if kernel_reset else None
        alarms = [a for a in det.update(x) if a.kind == "drift"]
        stat, thr = det.statistic, det.threshold
        if alarms:
            (a,) = alarms
            drifts += 1
            if kernel_reset:
                assert before is not None
                twin = _twin_without_test(det, before, x)
                expected = (twin.statistic, twin.threshold)
            else:
                expected = seen.pop()
            assert (a.statistic, a.threshold) == expected
            assert math.isfinite(a.statistic) and math.isfinite(a.threshold)
            if rule:
                assert _crossed(a.statistic, a.threshold, rule)
            # the fresh state: no test yet (CUSUM with μ₀ and sigma given: sums back at 0)
            assert stat == 0.0 if warm(det) else math.isnan(stat)
            continue
        assert not seen  # no reset without a drift
        if warm(det):
            assert math.isfinite(stat) and math.isfinite(thr), (stat, thr)
            if rule:  # the drift rule is the crossing: no alarm, no crossing
                assert not _crossed(stat, thr, rule), (stat, thr)
    assert drifts >= 1  # the change is caught


def _twin_without_test(det: Any, before: dict[str, Any], x: float) -> Any:
    """The detector's state after ``x`` without the test that fired (and reset it)."""
    if isinstance(det, ADWIN):
        slow = ADWIN(det.delta, 10**9, det.max_buckets, det.min_window_length, det.grace_period)
        slow.load_state_dict(before)
        slow._ints[0] = 0  # the twin's tick: its next test is a billion values away
        slow._left = slow.clock
        assert slow.update(x) == []
        return slow
    assert isinstance(det, KSWIN)
    never = KSWIN(0.5 / math.comb(60, 30), det.window_size, det.stat_size, det.seed)
    assert never._k_crit == det.stat_size + 1  # its tests cannot fire
    never.load_state_dict(before)
    assert never.update(x) == []
    twin = KSWIN(det.alpha, det.window_size, det.stat_size, det.seed)  # det's threshold
    twin.load_state_dict(never.state_dict())
    return twin


@pytest.mark.parametrize("name", sorted(CASES))
def test_properties_survive_state_dict(name: str) -> None:
    make, stream, _, _ = CASES[name]
    det = make()
    x = stream(3)
    for i, v in enumerate(x.tolist()):
        det.update(v)
        if i % 97 in (0, 40):  # before and after warm-up, around the change
            copy = make()
            copy.load_state_dict(det.state_dict())
            got, want = (copy.statistic, copy.threshold), (det.statistic, det.threshold)
            assert np.array_equal(got, want, equal_nan=True), (i, got, want)


@pytest.mark.parametrize("name", sorted(CASES))
def test_nan_before_any_value(name: str) -> None:
    det = CASES[name][0]()
    if isinstance(det, CUSUM) and det.target is not None:
        assert det.statistic == 0.0  # μ₀ and sigma given: the sums start at 0
    else:
        assert math.isnan(det.statistic)


@pytest.mark.parametrize("name", sorted(CASES))
def test_batch_and_scalar_paths_leave_the_same_properties(name: str) -> None:
    make, stream, _, _ = CASES[name]
    a, b = make(), make()
    for chunk in np.array_split(stream(4), 7):  # a batch's end: the same state, same values
        one = [(i, al.kind) for i, v in enumerate(chunk.tolist()) for al in a.update(v)]
        assert [(al.index, al.kind) for al in b.update(chunk)] == one
        got, want = (b.statistic, b.threshold), (a.statistic, a.threshold)
        assert np.array_equal(got, want, equal_nan=True), (got, want)
