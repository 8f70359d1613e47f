"""Detections agree with River 0.26 on seeded streams, and the exact indices are pinned.

Each case runs River's detector value by value and driftd's on the whole batch; both must give
the same drift indices and the same warning-zone entries. PINNED holds those indices, so a
change in driftd (or a River upgrade) shows up as a diff here (river's test_drift_detectors).
CUSUM has no River counterpart: it is checked against a plain Python loop of the recursion.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from river import drift
from river.drift import binary

from driftd.detectors.adwin import ADWIN
from driftd.detectors.cusum import CUSUM
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.page_hinkley import PageHinkley

Alarms = tuple[list[int], list[int]]  # drift indices, warning-zone entries


def bernoulli(seed: int, p0: float = 0.1, p1: float = 0.2, n: int = 20_000) -> np.ndarray:
    """Error indicators whose rate steps from p0 to p1 at n/2."""
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(n) < n // 2, p0, p1)
    return (rng.random(n) < p).astype(np.float64)


def gaussian(seed: int, shift: float = 0.5, n: int = 20_000) -> np.ndarray:
    """N(0, 1) whose mean shifts by ``shift`` at n/2."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, n) + np.where(np.arange(n) < n // 2, 0.0, shift)


def river_alarms(det: Any, x: np.ndarray) -> Alarms:
    drifts, entries, was = [], [], False
    for i, v in enumerate(x.tolist()):
        det.update(v)
        warn = bool(getattr(det, "warning_detected", False)) and not det.drift_detected
        if det.drift_detected:
            drifts.append(i)
        elif warn and not was:
            entries.append(i)
        was = warn
    return drifts, entries


def ours(det: Any, x: np.ndarray) -> Alarms:
    alarms = det.update(x)
    return (
        [a.index for a in alarms if a.kind == "drift"],
        [a.index for a in alarms if a.kind == "warning"],
    )


Case = tuple[Callable[[], Any], Callable[[], Any], Callable[[], np.ndarray]]
CASES: dict[str, Case] = {}
for s in range(3):
    step = partial(bernoulli, s, 0.2, 0.1) if s == 2 else partial(bernoulli, s)
    CASES[f"ADWIN/bernoulli/{s}"] = (ADWIN, drift.ADWIN, partial(bernoulli, s))
    CASES[f"ADWIN/gaussian/{s}"] = (ADWIN, drift.ADWIN, partial(gaussian, s))
    CASES[f"PageHinkley/bernoulli/{s}"] = (
        PageHinkley,
        drift.PageHinkley,
        partial(bernoulli, s, 0.1, 0.5),
    )
    ph: dict[str, Any] = {"delta": 0.25, "threshold": 20.0, "alpha": 1.0, "mode": "up"}
    CASES[f"PageHinkley-up-a1/gaussian/{s}"] = (
        partial(PageHinkley, **ph),
        partial(drift.PageHinkley, **ph),
        partial(gaussian, s),
    )
    CASES[f"DDM/bernoulli/{s}"] = (DDM, binary.DDM, partial(bernoulli, s))
    CASES[f"EDDM/bernoulli/{s}"] = (EDDM, binary.EDDM, partial(bernoulli, s))
    for two in (False, True):
        CASES[f"HDDM_A-{two}/bernoulli/{s}"] = (
            partial(HDDM_A, two_sided_test=two),
            partial(binary.HDDMA, two_sided_test=two),
            step,
        )
        CASES[f"HDDM_W-{two}/bernoulli/{s}"] = (
            partial(HDDM_W, two_sided_test=two),
            partial(binary.HDDMW, two_sided_test=two),
            step,
        )
    # River's KSWIN runs about 3,000 values/s: short streams
    CASES[f"KSWIN/gaussian/{s}"] = (
        partial(KSWIN, seed=s),
        partial(drift.KSWIN, seed=s),
        partial(gaussian, s, 1.0, 3_000),
    )
for s in range(3):
    # fading strong enough that S⁻'s starting value still counts when the threshold is crossed
    down: dict[str, Any] = {"delta": 0.1, "threshold": 3.0, "alpha": 0.9, "mode": "down"}
    CASES[f"PageHinkley-down-a0.9/gaussian/{s}"] = (
        partial(PageHinkley, **down),
        partial(drift.PageHinkley, **down),
        partial(gaussian, s, -1.0, 5_000),
    )


def steps() -> np.ndarray:
    """Hand-made jumps up and down, some landing exactly on the threshold of EDGES."""
    return np.array([0, 12, 0, 0, 0, 11, 0, 0, 0, -11, 0, 0, -10, 0, -12] + [0] * 6, float)


def drop() -> np.ndarray:
    """A fall at the second value: S⁻ must start below its running maximum's initial value."""
    return np.array([0, -9] + [0] * 6, float)


def tie() -> np.ndarray:
    """A jump whose statistic equals the threshold of EDGES exactly: no drift, it must exceed it."""
    return np.array([0, 10] + [0] * 6, float)


# a drift exactly at n == min_instances, and a statistic exactly equal to the threshold
EDGES: dict[str, Any] = {"min_instances": 2, "delta": 0.0, "threshold": 5.0, "alpha": 1.0}
for mode in ("up", "down", "both"):
    for gen in (steps, drop, tie):
        CASES[f"PageHinkley-{mode}-edges/{gen.__name__}"] = (
            partial(PageHinkley, **EDGES, mode=mode),
            partial(drift.PageHinkley, **EDGES, mode=mode),
            gen,
        )
small: dict[str, Any] = {"alpha": 0.01, "window_size": 50, "stat_size": 20, "seed": 7}
CASES["KSWIN-small/bernoulli/0"] = (
    partial(KSWIN, **small),
    partial(drift.KSWIN, **small),
    partial(bernoulli, 0, 0.05, 0.9, 3_000),
)
# a large window: random.sample picks with a set instead of a pool
wide: dict[str, Any] = {"window_size": 400, "stat_size": 10, "seed": 11}
CASES["KSWIN-wide/gaussian/0"] = (
    partial(KSWIN, **wide),
    partial(drift.KSWIN, **wide),
    partial(gaussian, 0, 2.0, 2_000),
)

PINNED: dict[str, Alarms] = {
    "ADWIN/bernoulli/0": ([10463], []),
    "ADWIN/gaussian/0": ([10175], []),
    "PageHinkley/bernoulli/0": ([10123], []),
    "PageHinkley-up-a1/gaussian/0": ([10110], []),
    "DDM/bernoulli/0": ([2056, 11199], [117, 119, 1249, 1271, 1291]),
    "EDDM/bernoulli/0": (
        [289, 674, 1011, 1273, 1503, 1815, 2032, 2303],
        [3719, 4291, 6066, 9197, 9728],
    ),
    "HDDM_A-False/bernoulli/0": ([10539], [10445, 10559]),
    "HDDM_W-False/bernoulli/0": ([13503], [13014, 13502, 14800]),
    "HDDM_A-True/bernoulli/0": ([10539], [10445, 10559]),
    "HDDM_W-True/bernoulli/0": ([13503], [13014, 13502, 14800]),
    "KSWIN/gaussian/0": ([1112, 1529, 1702, 2986], []),
    "ADWIN/bernoulli/1": ([10399], []),
    "ADWIN/gaussian/1": ([10111], []),
    "PageHinkley/bernoulli/1": ([10082, 18508], []),
    "PageHinkley-up-a1/gaussian/1": ([10053], []),
    "DDM/bernoulli/1": ([39, 263, 11114], [36, 242, 327, 1396, 1437]),
    "EDDM/bernoulli/1": (
        [298, 638, 1015, 1355, 1609, 1957, 2240, 2519],
        [3157, 3577, 3604, 5429, 7098],
    ),
    "HDDM_A-False/bernoulli/1": ([10797], [562, 10683]),
    "HDDM_W-False/bernoulli/1": ([10608], [10607, 12184, 12210, 12317, 13578]),
    "HDDM_A-True/bernoulli/1": ([10797], [562, 10683]),
    "HDDM_W-True/bernoulli/1": ([10608, 16373], [10607, 12184, 12210, 12317, 12514]),
    "KSWIN/gaussian/1": ([1519], []),
    "ADWIN/bernoulli/2": ([10143], []),
    "ADWIN/gaussian/2": ([10143], []),
    "PageHinkley/bernoulli/2": ([9022, 10110], []),
    "PageHinkley-up-a1/gaussian/2": ([10078], []),
    "DDM/bernoulli/2": ([89, 2317, 10659], [66, 80, 470, 488, 557]),
    "EDDM/bernoulli/2": (
        [290, 680, 1173, 1453, 1714, 2001, 2273, 2625],
        [3754, 4064, 4802, 4964, 5339],
    ),
    "HDDM_A-False/bernoulli/2": ([7885], [7881, 7883]),
    "HDDM_W-False/bernoulli/2": ([], [3125, 4165, 7886, 8879]),
    "HDDM_A-True/bernoulli/2": ([7885, 10769], [7881, 7883, 10460, 10503, 10509]),
    "HDDM_W-True/bernoulli/2": ([10789], [3125, 4165, 4411, 4552, 5384]),
    "KSWIN/gaussian/2": ([267, 1523, 2309, 2648, 2931], []),
    "KSWIN-wide/gaussian/0": ([759, 1168, 1603], []),
    "KSWIN-small/bernoulli/0": ([1510], []),
    "PageHinkley-down-a0.9/gaussian/0": ([52, 83, 113, 146, 178, 222, 263, 303], []),
    "PageHinkley-down-a0.9/gaussian/1": ([40, 83, 122, 174, 206, 265, 316, 347], []),
    "PageHinkley-down-a0.9/gaussian/2": ([29, 65, 96, 126, 156, 207, 237, 267], []),
    "PageHinkley-up-edges/steps": ([1, 5, 16], []),
    "PageHinkley-down-edges/steps": ([3, 7, 9, 12, 14], []),
    "PageHinkley-both-edges/steps": ([1, 5, 9, 12, 14], []),
    "PageHinkley-up-edges/drop": ([3], []),
    "PageHinkley-down-edges/drop": ([], []),
    "PageHinkley-both-edges/drop": ([3], []),
    "PageHinkley-up-edges/tie": ([], []),
    "PageHinkley-down-edges/tie": ([3], []),
    "PageHinkley-both-edges/tie": ([3], []),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_same_detections_as_river(key: str) -> None:
    make, make_river, gen = CASES[key]
    x = gen()
    expected = river_alarms(make_river(), x)
    assert ours(make(), x) == expected
    # the first drifts and warning entries, enough to catch any change
    assert (expected[0][:8], expected[1][:5]) == PINNED[key]


def _cusum_loop(x: np.ndarray, k: float, h: float) -> list[int]:
    hi = lo = 0.0
    out = []
    for i, z in enumerate(x.tolist()):
        hi, lo = max(0.0, hi + z - k), max(0.0, lo - z - k)
        if hi > h or lo > h:
            out.append(i)
            hi = lo = 0.0
    return out


@pytest.mark.parametrize("seed", range(3))
def test_cusum_matches_the_textbook_recursion(seed: int) -> None:
    x = gaussian(seed)
    expected = _cusum_loop(x, 0.5, 10.0)
    assert [a.index for a in CUSUM(target=0.0, scale=1.0).update(x)] == expected
    assert expected[:3] == PINNED_CUSUM[seed]


PINNED_CUSUM: dict[int, list[int]] = {
    0: [10172, 10206, 10264],
    1: [10063, 10174, 10213],
    2: [10088, 10242, 10407],
}


RIVER_TWINS: list[tuple[type[Any], type[Any]]] = [
    (ADWIN, drift.ADWIN),
    (PageHinkley, drift.PageHinkley),
    (DDM, binary.DDM),
    (EDDM, binary.EDDM),
    (HDDM_A, binary.HDDMA),
    (HDDM_W, binary.HDDMW),
    (KSWIN, drift.KSWIN),
]


@pytest.mark.parametrize(("cls", "twin"), RIVER_TWINS, ids=lambda c: c.__name__)
def test_defaults_are_rivers(cls: type[Any], twin: type[Any]) -> None:
    """Built without arguments, a detector has River's parameters (KSWIN's seed aside)."""
    names = [k for k in inspect.signature(cls).parameters if k != "seed"]
    ours_, rivers = cls(), twin()
    assert {k: getattr(ours_, k) for k in names} == {k: getattr(rivers, k) for k in names}
