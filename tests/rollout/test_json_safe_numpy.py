"""Rollout evidence goes into JSON columns: numpy scalars (a test's bool, counts) become
Python ones, non-finite floats None."""

from __future__ import annotations

import json

import numpy as np

from driftd.rollout.evidence import json_safe
from driftd.rollout.sequential import SeqTest


def test_numpy_scalars_and_non_finite_floats_become_json() -> None:
    got = json_safe({"fired": np.bool_(True), "n": np.int64(3), "x": [np.float64("inf"), 1.5]})
    assert json.dumps(got) == '{"fired": true, "n": 3, "x": [null, 1.5]}'


def test_a_sequential_test_rejects_with_a_python_bool() -> None:
    t = SeqTest(np.float64(5.0), np.float64(3.0), 0.5, 0.1)
    assert type(t.reject) is bool and t.reject
