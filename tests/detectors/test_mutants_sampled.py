"""Detector cases a sampled mutation run found unchecked: the valid range an error names."""

from __future__ import annotations

import pytest

from driftd.detectors.adwin import ADWIN


def test_a_negative_grace_period_names_the_valid_range() -> None:
    with pytest.raises(ValueError, match=r"^grace_period=-1 is invalid; valid: an integer >= 0$"):
        ADWIN(grace_period=-1)
