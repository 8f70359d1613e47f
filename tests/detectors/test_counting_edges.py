"""Edges of the quality and data-quality counters that a mutation run found unchecked: values
on a range's bounds, skipped rows through a merge, and bins left empty at the top."""

from __future__ import annotations

import numpy as np
import pytest

from driftd.detectors.data_quality import OutOfRange
from driftd.detectors.quality import CalibrationError, ConfusionMatrix


def test_values_on_the_bounds_are_in_range() -> None:
    det = OutOfRange(np.arange(11.0), q_low=0.0, q_high=1.0, window=4)
    assert (float(det.low[0]), float(det.high[0])) == (0.0, 10.0)
    assert det.update([0.0, 10.0, 0.0, 10.0]) == []
    assert [a.index for a in det.update([0.0, 10.0, 0.0, 10.5])] == [3]
    assert [a.index for a in det.update([-0.5, 5.0, 5.0, 5.0])] == [3]


def test_merge_adds_the_skipped_rows() -> None:
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update([0, 1, np.nan], [0, 1, 1])
    b.update([1, np.nan, np.nan], [1, 0, 1])
    a.merge(b)
    assert a.skipped == 3


def test_calibration_with_the_upper_bins_empty() -> None:
    m = CalibrationError(n_bins=4)
    m.update([0, 1, 1], [0.1, 0.2, 0.3])
    # bin 0: scores 0.1, 0.2 vs labels 0, 1; bin 1: 0.3 vs 1
    assert m.result() == pytest.approx((2 * 0.35 + 0.7) / 3)
    assert m.label_sum.tolist() == [1.0, 1.0, 0.0, 0.0]
