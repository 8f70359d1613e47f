"""The contract every streaming detector keeps, generated over all eight (river's checks/)."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from driftd.detectors import _kernels, adwin, cusum, ddm, hddm, kswin, page_hinkley
from driftd.detectors.adwin import ADWIN
from driftd.detectors.base import Alarm
from driftd.detectors.cusum import CUSUM
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.page_hinkley import PageHinkley
from driftd.errors import StateVersionError

Factory = Callable[[], Any]

# name -> (factory, binary input?, cheap enough for a 10,000,000-value stream?)
DETECTORS: dict[str, tuple[Factory, bool, bool]] = {
    "ADWIN": (ADWIN, False, True),
    "PageHinkley": (lambda: PageHinkley(delta=0.25, threshold=20.0), False, True),
    "CUSUM": (CUSUM, False, True),
    "DDM": (DDM, True, True),
    "EDDM": (EDDM, True, True),
    "HDDM_A": (lambda: HDDM_A(two_sided_test=True), True, True),
    "HDDM_W": (lambda: HDDM_W(two_sided_test=True), True, True),
    "KSWIN": (lambda: KSWIN(seed=3), False, False),
}
NAMES = sorted(DETECTORS)


def stream(name: str, n: int, seed: int = 0, period: int = 700) -> np.ndarray:
    """Values with a change every ``period`` values, so that every detector fires."""
    rng = np.random.default_rng(seed)
    high = (np.arange(n) // period) % 2 == 1
    if DETECTORS[name][1]:
        return (rng.random(n) < np.where(high, 0.5, 0.1)).astype(np.float64)
    return rng.normal(0.0, 1.0, n) + np.where(high, 2.0, 0.0)


def stationary(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if DETECTORS[name][1]:
        return (rng.random(n) < 0.1).astype(np.float64)
    return rng.normal(0.0, 1.0, n)


def feed(det: Any, x: np.ndarray, batch: int) -> list[tuple[int, str]]:
    """Alarms as (absolute position, kind) when ``x`` arrives in batches of ``batch``."""
    out: list[tuple[int, str]] = []
    for start in range(0, x.size, batch):
        out += [(start + a.index, a.kind) for a in det.update(x[start : start + batch])]
    return out


def plain(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(isinstance(k, str) and plain(v) for k, v in obj.items())
    return isinstance(obj, int | float | str | np.ndarray)


@pytest.mark.parametrize("name", NAMES)
def test_alarms_are_well_formed(name: str) -> None:
    det = DETECTORS[name][0]()
    x = stream(name, 20_000)
    alarms = det.update(x)
    assert any(a.kind == "drift" for a in alarms)
    assert all(isinstance(a, Alarm) and 0 <= a.index < x.size for a in alarms)
    assert all(a.kind in ("drift", "warning") and a.detector == name for a in alarms)
    assert all(math.isfinite(a.statistic) and math.isfinite(a.threshold) for a in alarms)
    assert [a.index for a in alarms] == sorted(a.index for a in alarms)


@pytest.mark.parametrize("name", NAMES)
def test_empty_and_scalar_batches(name: str) -> None:
    det = DETECTORS[name][0]()
    assert det.update(np.empty(0)) == []
    assert det.update([]) == []
    assert det.update(0.0) == []


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip(name: str) -> None:
    x = stream(name, 30_000, seed=1)
    det = DETECTORS[name][0]()
    det.update(x[:12_345])
    state = det.state_dict()
    assert plain(state) and state["v"] == 1
    restored = DETECTORS[name][0]()
    restored.load_state_dict(state)
    assert restored.update(x[12_345:]) == det.update(x[12_345:])


@pytest.mark.parametrize("name", NAMES)
def test_reset_after_alarm_is_a_fresh_start(name: str) -> None:
    x = stream(name, 20_000, seed=2)
    alarms = DETECTORS[name][0]().update(x)
    first = next(a.index for a in alarms if a.kind == "drift")
    later = [(a.index - first - 1, a.kind) for a in alarms if a.index > first]
    fresh = DETECTORS[name][0]().update(x[first + 1 :])
    assert [(a.index, a.kind) for a in fresh] == later


@pytest.mark.parametrize("name", NAMES)
def test_reset_forgets_everything(name: str) -> None:
    det = DETECTORS[name][0]()
    det.update(stream(name, 5_000))
    det.reset()
    new = DETECTORS[name][0]()
    x = stream(name, 5_000, seed=9)
    assert det.update(x) == new.update(x)


@pytest.mark.parametrize("name", NAMES)
def test_input_is_neither_mutated_nor_aliased(name: str) -> None:
    x = stream(name, 10_000, seed=3)
    original = x.copy()
    det = DETECTORS[name][0]()
    det.update(x)
    assert np.array_equal(x, original)
    for value in det.state_dict()["state"].values():
        assert not (isinstance(value, np.ndarray) and np.shares_memory(value, x))
    twin = DETECTORS[name][0]()
    twin.update(original.copy())
    x[:] = 123.0  # the caller reuses its buffer: the detector must not notice
    y = stream(name, 10_000, seed=4)
    assert det.update(y) == twin.update(y)
    # a list, an int array and a read-only view are accepted too
    ro = y.copy()
    ro.flags.writeable = False
    assert DETECTORS[name][0]().update(ro) == DETECTORS[name][0]().update(y.tolist())


def _size(state: dict[str, Any]) -> int:
    return sum(v.nbytes if isinstance(v, np.ndarray) else 8 for v in state["state"].values())


@pytest.mark.parametrize("name", NAMES)
def test_memory_is_bounded(name: str) -> None:
    # 10,000,000 values; KSWIN (about 250,000 values/s) gets 300,000
    total = 10_000_000 if DETECTORS[name][2] else 300_000
    chunk = min(total, 1_000_000)
    rng = np.random.default_rng(5)
    det = DETECTORS[name][0]()
    sizes = []
    for _ in range(total // chunk):
        det.update(stationary(name, chunk, rng))
        sizes.append(_size(det.state_dict()))
    assert max(sizes) == sizes[0] < 100_000


@pytest.mark.parametrize("name", NAMES)
def test_batch_split_invariance(name: str) -> None:
    short = stream(name, 3_000, seed=6, period=500)
    ones = feed(DETECTORS[name][0](), short, 1)
    assert (
        ones == feed(DETECTORS[name][0](), short, 100) == feed(DETECTORS[name][0](), short, 3_000)
    )
    assert any(kind == "drift" for _, kind in ones)
    long = stream(name, 300_000, seed=7, period=5_000)
    hundreds = feed(DETECTORS[name][0](), long, 100)
    assert hundreds == feed(DETECTORS[name][0](), long, 100_000)
    assert hundreds == feed(DETECTORS[name][0](), long, 300_000)


BAD_PARAMETERS = [
    (ADWIN, {"delta": 0.0}, "delta"),
    (ADWIN, {"clock": 0}, "clock"),
    (ADWIN, {"max_buckets": 1}, "max_buckets"),
    (ADWIN, {"min_window_length": 0}, "min_window_length"),
    (ADWIN, {"grace_period": -1}, "grace_period"),
    (PageHinkley, {"min_instances": 0}, "min_instances"),
    (PageHinkley, {"delta": -1.0}, "delta"),
    (PageHinkley, {"threshold": 0.0}, "threshold"),
    (PageHinkley, {"alpha": 1.5}, "alpha"),
    (PageHinkley, {"mode": "sideways"}, "mode"),
    (CUSUM, {"scale": 0.0}, "scale"),
    (CUSUM, {"target": math.inf}, "target"),
    (CUSUM, {"k": -0.1}, "k"),
    (CUSUM, {"threshold": -1.0}, "threshold"),
    (CUSUM, {"warm_start": 1}, "warm_start"),
    (CUSUM, {"mode": "x"}, "mode"),
    (DDM, {"warm_start": -1}, "warm_start"),
    (DDM, {"warning_threshold": 0.0}, "warning_threshold"),
    (DDM, {"drift_threshold": 1.0}, "drift_threshold"),
    (EDDM, {"warm_start": -1}, "warm_start"),
    (EDDM, {"alpha": 1.2}, "alpha"),
    (EDDM, {"beta": 0.99}, "beta"),
    (HDDM_A, {"drift_confidence": 0.0}, "drift_confidence"),
    (HDDM_A, {"warning_confidence": 0.0001}, "warning_confidence"),
    (HDDM_W, {"lambda_val": 0.0}, "lambda_val"),
    (HDDM_W, {"drift_confidence": 1.0}, "drift_confidence"),
    (KSWIN, {"alpha": 0.0}, "alpha"),
    (KSWIN, {"stat_size": 0}, "stat_size"),
    (KSWIN, {"window_size": 30}, "window_size"),
    (KSWIN, {"seed": -1}, "seed"),
    # just past each boundary
    (ADWIN, {"delta": 1.0}, "delta"),
    (PageHinkley, {"alpha": 0.0}, "alpha"),
    (PageHinkley, {"delta": -1e-9}, "delta"),
    (CUSUM, {"threshold": math.inf}, "threshold"),
    (CUSUM, {"scale": math.inf}, "scale"),
    (DDM, {"warning_threshold": 2.0, "drift_threshold": 1.99}, "drift_threshold"),
    (EDDM, {"alpha": 0.0}, "alpha"),
    (EDDM, {"alpha": 0.9, "beta": 0.0}, "beta"),
    (HDDM_A, {"drift_confidence": 1.0}, "drift_confidence"),
    (HDDM_A, {"warning_confidence": 1.0}, "warning_confidence"),
    (HDDM_W, {"lambda_val": 1.01}, "lambda_val"),
    (KSWIN, {"alpha": 1.0}, "alpha"),
]


@pytest.mark.parametrize(("cls", "kwargs", "key"), BAD_PARAMETERS)
def test_bad_parameters_name_the_key(cls: Factory, kwargs: dict[str, Any], key: str) -> None:
    # the message names the key, the value given and what is valid
    with pytest.raises(ValueError, match=rf"^{key}=") as info:
        cls(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{key}={kwargs[key]!r} is invalid; valid: ")
    assert message.removeprefix(f"{key}={kwargs[key]!r} is invalid; valid: ") not in ("", "None")


# the values on each boundary that are still valid
EDGE_PARAMETERS = [
    (ADWIN, {"clock": 1, "max_buckets": 2, "min_window_length": 1, "grace_period": 0}),
    (PageHinkley, {"min_instances": 1, "delta": 0.0, "alpha": 1.0}),
    (CUSUM, {"k": 0.0, "warm_start": 2}),
    (DDM, {"warm_start": 0, "warning_threshold": 2.0, "drift_threshold": 2.0}),
    (EDDM, {"warm_start": 0, "alpha": 1.0, "beta": 1.0}),
    (HDDM_A, {"drift_confidence": 0.01, "warning_confidence": 0.01}),
    (HDDM_W, {"lambda_val": 1.0}),
    (KSWIN, {"stat_size": 1, "window_size": 2, "seed": 0}),
]


@pytest.mark.parametrize(("cls", "kwargs"), EDGE_PARAMETERS)
def test_boundary_parameters_are_accepted(cls: Factory, kwargs: dict[str, Any]) -> None:
    det = cls(**kwargs)
    assert {k: getattr(det, k) for k in kwargs} == kwargs


@pytest.mark.parametrize("name", NAMES)
def test_foreign_or_newer_state_is_refused(name: str) -> None:
    det = DETECTORS[name][0]()
    state = det.state_dict()
    with pytest.raises(StateVersionError):
        det.load_state_dict({**state, "v": 2})
    with pytest.raises(StateVersionError):
        det.load_state_dict({**state, "kind": "driftd.detectors.Other"})
    other = "DDM" if name != "DDM" else "EDDM"
    with pytest.raises(StateVersionError):
        det.load_state_dict(DETECTORS[other][0]().state_dict())


def test_cusum_merge_equals_one_pass() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 1.0, 50_000)
    whole, left, right = (CUSUM(target=0.0, scale=1.0, threshold=25.0) for _ in range(3))
    assert whole.update(x) == []
    left.update(x[:20_000])
    right.update(x[20_000:])
    left.merge(right)
    assert np.allclose(left.state_dict()["state"]["s"], whole.state_dict()["state"]["s"])
    y = rng.normal(1.0, 1.0, 2_000)
    assert [a.index for a in left.update(y)] == [a.index for a in whole.update(y)]
    with pytest.raises(ValueError, match="fixed target"):
        CUSUM().merge(CUSUM())


@pytest.mark.parametrize("module", [_kernels, adwin, cusum, ddm, hddm, kswin, page_hinkley])
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
