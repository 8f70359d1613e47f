"""What each detector stream and window-check column is, as values of a batch.

A stream names one scalar per event: ``error``, ``score``, ``latency``, ``feature:NAME``
(categorical features as stable category keys), ``feature:NAME=VALUE``; a column of a row
group keeps missing values as NaN: ``col:NAME`` and ``pcol:NAME`` of predictions (features,
``@score``, ``@score:CLASS``, ``@prediction``, ``@segment``), ``jcol:NAME`` of joined rows
(``@label`` too; a model that declares its classes has its targets as stable class keys).
Categories and segments are keyed by the CRC-32 of their string, the same in every process.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftd.contracts.columns import F64, OTHER
from driftd.contracts.monitor import MonitorBatch

_EMPTY = np.empty(0)
U32 = npt.NDArray[np.uint32]


def stable_keys(ids: Sequence[str]) -> U32:
    """A hash of each event id that is the same in every process (CRC-32 of its UTF-8)."""
    return np.fromiter(map(zlib.crc32, map(str.encode, ids)), dtype=np.uint32, count=len(ids))


OTHER_KEY = -2.0  # a category beyond the vocabulary's cap: its string is not kept
SEGMENT = "@segment"  # the column of segment keys (``col:@segment``) for the window checks
SCORE, PREDICTION, LABEL = "@score", "@prediction", "@label"  # performance estimation columns
CLASS_SCORE = "@score:"  # ``@score:CLASS``: a multiclass prediction's score of one class
ROW_GROUPS = ("col:", "pcol:", "jcol:")  # streams kept as aligned rows, sampled by id hash


def category_keys(values: Sequence[str]) -> F64:
    """Each category string's stable key (see ``Vocab.keys``), for a plain list."""
    return stable_keys(list(values)).astype(np.float64)


def category_key(value: str) -> float:
    """The stable key of one category string (see ``category_keys``)."""
    return float(zlib.crc32(value.encode()))


def feature_column(batch: MonitorBatch, name: str, numeric_names: Sequence[str]) -> F64:
    """One feature of the batch's predictions as floats, NaN where missing: a numeric
    feature's values, or a categorical feature's stable category keys."""
    p = batch.predictions
    if name in numeric_names:
        return p.numeric[:, list(numeric_names).index(name)]
    return _keyed(batch, name, p.categorical)


def _keyed(batch: MonitorBatch, name: str, categorical: npt.NDArray[np.int32]) -> F64:
    """A categorical feature's codes (of predictions or joined rows) as stable category keys:
    NaN where missing, ``OTHER_KEY`` beyond the vocabulary's cap."""
    j = list(batch.categorical_names).index(name)
    codes = categorical[:, j]
    keys = batch.categorical_keys[j] if batch.categorical_keys else _EMPTY
    out = np.full(len(codes), np.nan)
    known = codes >= 0
    out[known] = keys[codes[known]] if len(keys) else codes[known].astype(np.float64)
    out[codes == OTHER] = OTHER_KEY
    return out


def segment_keys(batch: MonitorBatch) -> F64:
    """Each prediction's segment as a stable key (NaN without one)."""
    if len(batch.segments) != len(batch.predictions):
        return np.full(len(batch.predictions), np.nan)
    return np.array([category_key(v) if v else np.nan for v in batch.segments], np.float64)


MAX_LABELS = 256  # category names a batch reports per feature: the most frequent


def category_labels(batch: MonitorBatch, name: str) -> dict[int, str]:
    """The names of a categorical feature's categories in the batch's predictions, by stable
    key (the ``MAX_LABELS`` most frequent), so that the leader can show names, not keys."""
    if name not in batch.categorical_names or not batch.categorical_values:
        return {}
    j = list(batch.categorical_names).index(name)
    codes = batch.predictions.categorical[:, j]
    codes = codes[codes >= 0]
    if not len(codes):
        return {}
    uniq, counts = np.unique(codes, return_counts=True)
    top = uniq[np.argsort(-counts, kind="stable")[:MAX_LABELS]]
    keys, values = batch.categorical_keys[j], batch.categorical_values[j]
    return {int(keys[c]): values[c] for c in top.tolist() if c < len(keys) and c < len(values)}


def segment_labels(batch: MonitorBatch) -> dict[int, str]:
    """The batch's segment labels by their stable keys."""
    return {int(category_key(v)): v for v in set(batch.segments) if v}


def _joined_column(
    batch: MonitorBatch, name: str, numeric_names: Sequence[str]
) -> tuple[npt.NDArray[np.int32], F64, F64, npt.NDArray[np.intp]] | None:
    """A column of the joined rows (score, prediction, label or a feature, NaN kept), at the
    label's time: what a performance estimator is fitted on."""
    j = batch.joined
    if j is None or not len(j):
        return None
    if name in (SCORE, PREDICTION, LABEL):
        raw = {SCORE: j.score, PREDICTION: j.prediction, LABEL: j.label}[name]
        vals = raw if name == SCORE else _target(batch, raw)
    elif name.startswith(CLASS_SCORE):
        vals = _class_score(batch, j.scores, name)
    elif name in numeric_names:
        vals = j.numeric[:, list(numeric_names).index(name)]
    else:
        vals = _keyed(batch, name, j.categorical)
    return j.version, vals, j.label_ts, np.arange(len(j))


def _target(batch: MonitorBatch, values: F64) -> F64:
    """Targets as they are, or for a model that declares its classes the stable key of each
    class code (CRC-32 of its name, as category keys are): codes depend on arrival order."""
    keys = batch.target_keys
    if not batch.class_names or not len(keys):
        return values
    codes = values.astype(np.int64)
    known = (codes >= 0) & (codes < len(keys))
    return np.where(known, keys[np.clip(codes, 0, len(keys) - 1)], np.nan)


def class_index(values: F64, class_names: Sequence[str]) -> npt.NDArray[np.intp]:
    """Each stable class key's position among ``class_names``; -1 for another class or NaN."""
    lookup = {category_key(c): i for i, c in enumerate(class_names)}
    return np.array([lookup.get(v, -1) for v in values.tolist()], dtype=np.intp)


def _class_score(batch: MonitorBatch, scores: F64, name: str) -> F64:
    """The ``@score:CLASS`` column of a scores matrix (NaN when the model has no such class)."""
    cls = name.removeprefix(CLASS_SCORE)
    if cls not in batch.class_names or not scores.shape[1]:
        return np.full(len(scores), np.nan)
    return scores[:, list(batch.class_names).index(cls)]


def _indicator(batch: MonitorBatch, name: str, value: str) -> F64:
    """1.0 where the categorical feature equals ``value``, 0.0 elsewhere, NaN if missing."""
    col = feature_column(batch, name, ())
    return np.where(np.isnan(col), np.nan, (col == category_key(value)).astype(np.float64))


def stream_values(
    batch: MonitorBatch, stream: str, task: str, numeric_names: Sequence[str]
) -> tuple[npt.NDArray[np.int32], F64, F64, npt.NDArray[np.intp]] | None:
    """(version codes, values, event times, rows) of one detector stream in a batch, NaNs
    dropped; ``rows`` index the batch's joined rows (``error``) or predictions (the others).

    ``error`` is 1.0 where a joined prediction differs from its label, else 0.0
    (classification), or the absolute error (regression), at the label's time; ``score``,
    ``latency`` (ms) and ``feature:NAME`` are the predictions' values at their time (a
    categorical feature's stable category keys; ``feature:NAME=VALUE`` is 1.0 where it equals
    VALUE, else 0.0). ``col:NAME`` is a feature with its missing values kept (as NaN), for the
    window checks.
    """
    if stream.startswith("jcol:"):
        return _joined_column(batch, stream[5:], numeric_names)
    if stream == "error":
        j = batch.joined
        if j is None or not len(j):
            return None
        if task == "regression":
            vals = np.abs(j.prediction - j.label)
        else:
            vals = (j.prediction != j.label).astype(np.float64)
        return j.version, vals, j.label_ts, np.arange(len(j))
    p = batch.predictions
    if not len(p):
        return None
    if stream == "score":
        vals = p.score
    elif stream == "latency":
        vals = p.latency_ms
    elif stream.startswith(("col:", "pcol:")):
        name = stream.partition(":")[2]
        if name == SCORE:
            vals = p.score
        elif name == PREDICTION:
            vals = _target(batch, p.prediction)
        elif name.startswith(CLASS_SCORE):
            vals = _class_score(batch, p.scores, name)
        elif name == SEGMENT:
            vals = segment_keys(batch)
        else:
            vals = feature_column(batch, name, numeric_names)
        return p.version, vals, p.ts, np.arange(len(p))
    else:
        name, eq, value = stream.removeprefix("feature:").partition("=")
        vals = _indicator(batch, name, value) if eq else feature_column(batch, name, numeric_names)
    keep = np.flatnonzero(~np.isnan(vals))
    return p.version[keep], vals[keep], p.ts[keep], keep
