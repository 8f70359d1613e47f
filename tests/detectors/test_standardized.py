"""``Standardized``: thresholds in standard deviations, the same alarms whatever the unit."""

from __future__ import annotations

import numpy as np
import pytest

from driftd.detectors import PageHinkley
from driftd.detectors.standardized import Standardized


def _alarms(det: Standardized, x: np.ndarray, batch: int) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for lo in range(0, x.size, batch):
        out += [(lo + a.index, a.kind) for a in det.update(x[lo : lo + batch])]
    return out


def test_the_same_stream_in_other_units_raises_the_same_alarms() -> None:
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=30_000), rng.normal(1.0, 1.0, 5_000)])
    got = {
        unit: _alarms(
            Standardized(PageHinkley(delta=0.25, threshold=25.0, alpha=1.0), warmup=1_000),
            z * unit + 7 * unit,
            997,
        )
        for unit in (1e-3, 1.0, 800.0)
    }
    assert got[1.0], "the 1-sd shift must be detected"
    assert all(a[0] >= 30_000 for a in got[1.0])
    assert got[1e-3] == got[1.0] == got[800.0]


def test_raw_units_are_what_the_wrapper_fixes() -> None:
    rng = np.random.default_rng(1)
    ms = rng.normal(5_000.0, 800.0, 50_000)  # a stationary latency in milliseconds
    raw = PageHinkley()
    raw_alarms = sum(a.kind == "drift" for a in raw.update(ms))
    wrapped = Standardized(PageHinkley(delta=0.25, threshold=25.0, alpha=1.0))
    assert raw_alarms > 10  # River's defaults read 800 ms of noise as drift, again and again
    assert wrapped.update(ms) == []


@pytest.mark.parametrize("split", [1, 7, 1_000, 5_000])
def test_warmup_values_are_held_back_and_indices_stay_in_the_callers_batch(split: int) -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=2_000), rng.normal(3.0, 1.0, 2_000)])
    whole = _alarms(
        Standardized(PageHinkley(delta=0.25, threshold=25.0, alpha=1.0), warmup=1_000), x, x.size
    )
    assert (
        whole
        and _alarms(
            Standardized(PageHinkley(delta=0.25, threshold=25.0, alpha=1.0), warmup=1_000), x, split
        )
        == whole
    )


def test_state_round_trips_mid_warmup_and_after() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=3_000), rng.normal(2.0, 1.0, 3_000)])
    for cut in (500, 2_500):
        a = Standardized(PageHinkley(delta=0.25, threshold=25.0, alpha=1.0), warmup=1_000)
        a.update(x[:cut])
        b = Standardized(PageHinkley(delta=0.25, threshold=25.0, alpha=1.0), warmup=1_000)
        b.load_state_dict(a.state_dict())
        assert [(q.index, q.kind) for q in a.update(x[cut:])] == [
            (q.index, q.kind) for q in b.update(x[cut:])
        ]


def test_a_constant_warmup_gets_a_floor_not_a_zero_scale() -> None:
    det = Standardized(PageHinkley(), warmup=100)
    det.update(np.full(100, 250.0))
    assert det.sd == pytest.approx(250.0 * 1e-9)
    with pytest.raises(ValueError, match="warmup"):
        Standardized(PageHinkley(), warmup=1)
