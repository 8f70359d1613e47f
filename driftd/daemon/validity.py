"""Events that contradict their model's declared task, and features a producer left out.

Decided per case (each event is judged alone, before it reaches the join):

- ``score`` of a ``binary`` or ``multiclass`` model is a probability (of class 1, or of the
  predicted class): outside [0, 1] it is dead-lettered as ``invalid_value``. A regression
  model's score is not interpreted.
- ``prediction`` and ``label`` of a ``binary`` model are the numbers 0 or 1 (the class that
  ``score`` is the probability of); anything else (``"yes"``, 2, 0.5) is ``invalid_value``.
  Name string classes with a ``multiclass`` model.
- ``multiclass`` targets are class names (strings) or whole numbers; 2.5 is ``invalid_value``.
- ``regression`` targets are numbers; a string is ``invalid_value``.
- Non-finite numbers cannot arrive (JSON has none, and the decoder refuses 1e400); they would
  be ``invalid_value`` too.
- A declared feature that is absent or null is not an error: producers commonly omit nulls.
  It is stored as missing (NaN, or the MISSING category code) and counted per model and
  feature in the checkpointed state (``driftd_feature_missing_total``): a data-quality signal.

Each detail names the field, the value given and what the task expects.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from driftd.contracts.columns import MISSING, PredictionColumns
from driftd.contracts.events import LabelHead, PredictionHead

Problem = tuple[int, str]  # (index in the batch, detail)

_PREDICTION = operator.attrgetter("prediction")
_SCORE = operator.attrgetter("score")
_LABEL = operator.attrgetter("label")


def _expects(task: str) -> str:
    return {
        "binary": "the number 0 or 1",
        "multiclass": "a class name or a whole number",
        "regression": "a finite number",
    }[task]


def _target_ok(task: str, v: float | str) -> bool:
    if isinstance(v, str):
        return task == "multiclass"
    if not math.isfinite(v):
        return False
    if task == "binary":
        return v in (0.0, 1.0)
    return task == "regression" or v.is_integer()


def invalid_targets(
    task: str, model: str, field: str, values: Sequence[float | str]
) -> list[Problem]:
    """Predictions or labels (``field``) of the wrong kind for the model's task."""
    if not values:
        return []
    if task == "binary" and values.count(0.0) + values.count(1.0) == len(values):
        return []  # the usual batch, checked in C (a string never equals a number)
    if set(map(type, values)) == {float}:  # the usual batch: numbers only, checked at once
        x = np.asarray(values, dtype=np.float64)
        if task == "binary":
            fine = (x == 0.0) | (x == 1.0)
        elif task == "multiclass":
            fine = np.isfinite(x) & (x == np.round(x))
        else:
            fine = np.isfinite(x)
        if fine.all():
            return []
        bad = np.flatnonzero(~fine).tolist()
    else:
        bad = [i for i, v in enumerate(values) if not _target_ok(task, v)]
    return [
        (
            i,
            f"{field} {values[i]!r} does not fit model {model!r}: a {task} model's {field} "
            f"is {_expects(task)}",
        )
        for i in bad
    ]


def invalid_scores(task: str, model: str, scores: Sequence[float | None]) -> list[Problem]:
    """Scores outside [0, 1] for a classifier; non-finite scores for any model."""
    if scores.count(None) == len(scores):
        return []
    x = np.asarray(scores, dtype=np.float64)  # None (absent) becomes NaN
    bad = np.isinf(x)
    if task != "regression":
        bad |= (x < 0.0) | (x > 1.0)
    if not bad.any():
        return []
    return [
        (
            i,
            f"score {scores[i]!r} does not fit model {model!r}: a {task} model's score is a "
            "probability in [0, 1]",
        )
        for i in np.flatnonzero(bad).tolist()
    ]


def invalid_predictions(task: str, model: str, heads: Sequence[PredictionHead]) -> list[Problem]:
    """Predictions whose value or score contradicts the task (the first problem of each)."""
    problems = invalid_targets(task, model, "prediction", list(map(_PREDICTION, heads)))
    problems += invalid_scores(task, model, list(map(_SCORE, heads)))
    first: dict[int, str] = {}
    for i, detail in problems:
        first.setdefault(i, detail)
    return sorted(first.items())


def invalid_labels(task: str, model: str, heads: Sequence[LabelHead]) -> list[Problem]:
    """Labels whose value contradicts the task."""
    return invalid_targets(task, model, "label", list(map(_LABEL, heads)))


def missing_counts(
    cols: PredictionColumns, numeric: Sequence[str], categorical: Sequence[str]
) -> dict[str, int]:
    """Per declared feature, how many predictions left it out (absent or null); zeros omitted."""
    counts = np.concatenate(
        [np.isnan(cols.numeric).sum(axis=0), (cols.categorical == MISSING).sum(axis=0)]
    ).tolist()
    return {f: int(n) for f, n in zip([*numeric, *categorical], counts, strict=True) if n}
