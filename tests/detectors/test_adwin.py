"""ADWIN's state layout and scalar path: rings unrolled to River's bucket rows, one value at a
time against River with several drifts, copies that carry on identically."""

from __future__ import annotations

import copy
import pickle
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from river import drift

from driftd.detectors import ADWIN


def river_rows(x: np.ndarray, max_buckets: int) -> list[deque[tuple[float, float]]]:
    """River's exponential histogram after ``x`` (no tests): a deque of (total, variance) per
    row, oldest first; insert and merge with River's operations in River's order."""
    rows: list[deque[tuple[float, float]]] = [deque()]
    for v in x.tolist():
        rows[0].append((v, 0.0))
        row = 0
        while len(rows[row]) == max_buckets + 1:
            n1 = float(1 << row)
            (t0, v0), (t1, v1) = rows[row].popleft(), rows[row].popleft()
            mu1, mu2 = t0 / n1, t1 / n1
            if row + 1 == len(rows):
                rows.append(deque())
            rows[row + 1].append((t0 + t1, v0 + v1 + n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)))
            if len(rows[row + 1]) <= max_buckets:
                break
            row += 1
    return rows


@pytest.mark.parametrize("max_buckets", [2, 5, 7])
@pytest.mark.parametrize("single", [False, True])
def test_the_state_holds_rivers_bucket_rows(max_buckets: int, single: bool) -> None:
    """The kernel keeps each row as a ring; state_dict() unrolls it to River's rows, oldest
    bucket first and zeros after the last, bit for bit."""
    x = np.random.default_rng(max_buckets).normal(3.0, 2.0, 5_003)
    det = ADWIN(max_buckets=max_buckets, grace_period=10**9)  # no test, so no reset
    if single:
        for v in x.tolist():
            det.update(v)
    else:
        det.update(x[:1_234])
        det.update(x[1_234:])
    s = det.state_dict()["state"]
    rows = river_rows(x, max_buckets)
    totals = np.zeros_like(s["totals"])
    variances = np.zeros_like(s["variances"])
    for r, row in enumerate(rows):
        for j, (t, v) in enumerate(row):
            totals[r, j], variances[r, j] = t, v
    assert s["counts"][: len(rows)].tolist() == [len(row) for row in rows]
    assert not s["counts"][len(rows) :].any()
    assert np.array_equal(s["totals"], totals) and np.array_equal(s["variances"], variances)
    assert s["ints"][1] == len(rows)


def test_one_value_at_a_time_fires_where_river_does() -> None:
    """A stream whose mean moves every 3,000 values: River, value by value, and driftd's
    scalar path give the same drifts (each followed by a full reset)."""
    rng = np.random.default_rng(4)
    means = np.repeat(np.tile([0.0, 0.8, 0.2, -0.5], 3), 3_000)
    x = rng.normal(means, 1.0)
    make_river: Callable[[], Any] = drift.ADWIN  # untyped
    river = make_river()
    ours = ADWIN()
    expected, got = [], []
    for t, v in enumerate(x.tolist()):
        river.update(v)
        if river.drift_detected:
            expected.append(t)
        if ours.update(v):
            got.append(t)
    assert len(expected) >= 8
    assert got == expected


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda d: pickle.loads(pickle.dumps(d))])
def test_a_copy_with_pending_values_carries_on_identically(clone: Callable[[ADWIN], ADWIN]) -> None:
    x = np.random.default_rng(9).normal(np.repeat([0.0, 1.0], 2_000), 1.0)
    det = ADWIN(clock=7)
    for v in x[:1_001].tolist():  # leaves values pending between tests
        det.update(v)
    twin = clone(det)
    assert twin.clock == 7
    a = [(t, al.statistic) for t, v in enumerate(x[1_001:].tolist()) for al in det.update(v)]
    b = [(t, al.statistic) for t, v in enumerate(x[1_001:].tolist()) for al in twin.update(v)]
    assert a and a == b
    sa, sb = det.state_dict()["state"], twin.state_dict()["state"]
    assert all(np.array_equal(sa[key], sb[key]) for key in sa)


def test_a_state_saved_under_a_longer_clock_tests_on_the_next_value() -> None:
    """Its tick may be past the new clock: the next value tests (as in the batch kernel, whose
    tick only has to reach the clock), one value at a time and in batches alike."""
    x = np.random.default_rng(2).normal(np.repeat([0.0, 1.5, 0.0], 1_500), 1.0)
    saved = ADWIN(clock=32)
    saved.update(x[:1_020])  # tick 1020 % 32 = 28
    assert saved.state_dict()["state"]["ints"][0] == 28
    single, batched = ADWIN(clock=5), ADWIN(clock=5)
    single.load_state_dict(saved.state_dict())
    batched.load_state_dict(saved.state_dict())
    a = [(t, al.statistic) for t, v in enumerate(x[1_020:].tolist()) for al in single.update(v)]
    b = [(al.index, al.statistic) for al in batched.update(x[1_020:])]
    assert a and a == b
    sa, sb = single.state_dict()["state"], batched.state_dict()["state"]
    assert all(np.array_equal(sa[key], sb[key]) for key in sa)
