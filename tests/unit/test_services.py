"""The CI switch that decides whether a missing service fails or skips a test."""

from __future__ import annotations

import pytest

from tests.services import in_ci


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes", " true "])
def test_ci_values_that_mean_yes(value: str) -> None:
    assert in_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "false", "False", "0", "no"])
def test_ci_values_that_mean_no(value: str) -> None:
    assert not in_ci({"CI": value})
    assert not in_ci({})
