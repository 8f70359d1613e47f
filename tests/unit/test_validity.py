"""validity: targets and scores judged against the model's task; missing features counted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from driftd.config import IngestSettings, JoinSettings, ModelSettings
from driftd.daemon.metrics.checkpointed import CheckpointedCollector
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.validity import invalid_scores, invalid_targets
from tests.unit.test_pipeline import pred, process


@pytest.mark.parametrize(
    ("task", "values", "bad"),
    [
        ("binary", [0.0, 1.0, 1.0, 0.0], []),
        ("binary", [0.0, 2.0, -1.0, 0.5, np.inf], [1, 2, 3, 4]),
        ("binary", [1.0, "1", "yes"], [1, 2]),
        ("multiclass", [0.0, 3.0, "cat", 2.5, -np.inf], [3, 4]),
        ("regression", [0.25, -3.0, 1e300], []),
        ("regression", [0.25, "0.25", np.nan], [1, 2]),
    ],
)
def test_invalid_targets_by_task(task: str, values: list[Any], bad: list[int]) -> None:
    problems = invalid_targets(task, "m", "label", values)
    assert [i for i, _ in problems] == bad
    for i, detail in problems:
        assert f"label {values[i]!r}" in detail and f"a {task} model's label is" in detail


@pytest.mark.parametrize(
    ("task", "scores", "bad"),
    [
        ("binary", [0.0, 1.0, None, 0.5], []),
        ("binary", [7.5, -1.0, 1.0000001, np.inf], [0, 1, 2, 3]),
        ("multiclass", [None, 1.5], [1]),
        ("regression", [7.5, -1.0, None], []),
        ("regression", [-np.inf], [0]),
    ],
)
def test_invalid_scores_by_task(task: str, scores: list[Any], bad: list[int]) -> None:
    assert [i for i, _ in invalid_scores(task, "m", scores)] == bad


def test_missing_features_are_exported_per_model_and_feature_from_the_state() -> None:
    models = {"m": ModelSettings(features={"x": "numeric", "c": "categorical", "y": "numeric"})}
    p = Pipeline(models, IngestSettings(), JoinSettings())
    process(p, [pred(1, features={"x": 1.0}), pred(2, features={"c": "a", "x": None})])
    registry = CollectorRegistry()
    registry.register(CheckpointedCollector(p, ["m"]))
    value = registry.get_sample_value
    labels = {"model": "m", "partition": "0"}
    assert value("driftd_feature_missing_total", labels | {"feature": "x"}) == 1
    assert value("driftd_feature_missing_total", labels | {"feature": "c"}) == 1
    assert value("driftd_feature_missing_total", labels | {"feature": "y"}) == 2
    idle = Pipeline(models, IngestSettings(), JoinSettings())
    empty = CollectorRegistry()
    empty.register(CheckpointedCollector(idle, []))
    # No partition held: no series. A partition held: every declared feature at 0.
    assert empty.get_sample_value("driftd_feature_missing_total", labels | {"feature": "y"}) is None
    idle.partition(0)
    assert empty.get_sample_value("driftd_feature_missing_total", labels | {"feature": "y"}) == 0
