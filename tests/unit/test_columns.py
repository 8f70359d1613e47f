"""Vocabularies, compiled feature schemas and columnar batches."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from driftd.config import ModelSettings
from driftd.contracts.columns import MISSING, OTHER, Vocab
from driftd.contracts.events import LabelHead, PredictionHead
from driftd.daemon.columns import ModelSchema, label_columns, prediction_columns, target_column


def test_vocab_codes_are_stable_and_dense() -> None:
    v = Vocab()
    first = v.codes(["b", "a", "b", "c"]).tolist()
    assert first == [0, 1, 0, 2]
    assert v.codes(["c", "a", "d"]).tolist() == [2, 1, 3]
    assert v.values == ["b", "a", "c", "d"]
    assert len(v) == 4


def test_vocab_restored_from_values_keeps_codes() -> None:
    v = Vocab()
    v.codes(["x", "y", "z"])
    again = Vocab(v.values)
    assert again.codes(["z", "x", "new"]).tolist() == [2, 0, 3]


def test_vocab_cap_maps_new_values_to_other() -> None:
    v = Vocab(cap=2)
    assert v.codes(["a", "b", "c", "a"]).tolist() == [0, 1, OTHER, 0]
    assert v.code("d") == OTHER
    assert len(v) == 2


def test_vocab_none_is_missing_and_non_strings_are_stringified() -> None:
    v = Vocab()
    codes = v.codes([None, 3, "3", 2.5, None]).tolist()
    assert codes[0] == codes[4] == MISSING
    assert codes[1] == codes[2]
    assert v.values == ["3", "2.5"]
    assert codes[3] == v.values.index("2.5")


def test_target_column_numeric_values_pass_through() -> None:
    classes = Vocab()
    col = target_column([1.0, 0.0, 2.5], classes)
    assert col.dtype == np.float64
    assert col.tolist() == [1.0, 0.0, 2.5]
    assert len(classes) == 0


def test_target_column_strings_become_class_codes() -> None:
    classes = Vocab()
    col = target_column(["cat", "dog", "cat"], classes)
    assert col.tolist() == [0.0, 1.0, 0.0]
    assert target_column(["dog", 4.0], classes).tolist() == [1.0, 4.0]


SETTINGS = ModelSettings(
    # Names chosen to collide with the generated attribute names (f0, f1) and a JSON key.
    features={
        "f1": "numeric",
        "amount usd": "numeric",
        "f0": "categorical",
        "kind": "categorical",
    }
)


def _head(i: int, features: dict[str, Any], **extra: Any) -> PredictionHead:
    obj = {
        "kind": "prediction",
        "id": f"p{i}",
        "model": "m",
        "version": extra.pop("version", "1"),
        "ts": float(i),
        "features": features,
        "prediction": extra.pop("prediction", 1),
        **extra,
    }
    return msgspec.json.decode(msgspec.json.encode(obj), type=PredictionHead)


def test_schema_separates_numeric_and_categorical_names() -> None:
    schema = ModelSchema("m", SETTINGS)
    assert schema.numeric_names == ("f1", "amount usd")
    assert schema.categorical_names == ("f0", "kind")


def test_strict_decoder_rejects_unknown_features_lenient_ignores_them() -> None:
    schema = ModelSchema("m", SETTINGS)
    raw = b'{"f1": 1.0, "other": 2}'
    with pytest.raises(msgspec.ValidationError, match="unknown field `other`"):
        schema.strict_decoder.decode(raw)
    matrix = schema.numeric_matrix([schema.lenient_decoder.decode(raw)])
    np.testing.assert_array_equal(matrix, [[1.0, np.nan]])


def test_prediction_columns_follow_the_feature_names() -> None:
    schema = ModelSchema("m", SETTINGS)
    heads = [
        _head(0, {"f1": 1.5, "amount usd": 10.0, "f0": "de", "kind": "a"}, score=0.25),
        _head(1, {"f1": None, "f0": "us"}, version="2", latency_ms=5.0, error="timeout"),
        _head(2, {"amount usd": -3.0, "f0": "de", "kind": 7}, prediction="yes"),
    ]
    feats = [schema.strict_decoder.decode(h.features) for h in heads]
    versions, classes = Vocab(), Vocab()
    cats = [Vocab(), Vocab()]
    cols = prediction_columns(heads, feats, schema, versions, cats, classes)

    assert cols.ids == ["p0", "p1", "p2"]
    assert [versions.values[c] for c in cols.version] == ["1", "2", "1"]
    assert cols.ts.tolist() == [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(
        cols.numeric, np.array([[1.5, 10.0], [np.nan, np.nan], [np.nan, -3.0]])
    )
    # Column 0 is feature "f0", column 1 is feature "kind"; absent values are MISSING.
    assert [cats[0].values[c] for c in cols.categorical[:, 0]] == ["de", "us", "de"]
    kind_codes = cols.categorical[:, 1].tolist()
    assert kind_codes[1] == MISSING
    assert [cats[1].values[kind_codes[0]], cats[1].values[kind_codes[2]]] == ["a", "7"]
    np.testing.assert_array_equal(cols.score, [0.25, np.nan, np.nan])
    np.testing.assert_array_equal(cols.latency_ms, [np.nan, 5.0, np.nan])
    assert cols.error.tolist() == [False, True, False]
    # A string target in the batch turns every target into class codes.
    assert cols.prediction.tolist() == [1.0, 1.0, float(classes.values.index("yes"))]
    assert len(cols) == 3


def test_take_selects_rows_of_every_column() -> None:
    schema = ModelSchema("m", SETTINGS)
    heads = [_head(i, {"f1": float(i), "f0": f"c{i}"}) for i in range(5)]
    feats = [schema.strict_decoder.decode(h.features) for h in heads]
    cols = prediction_columns(heads, feats, schema, Vocab(), [Vocab(), Vocab()], Vocab())
    sub = cols.take(np.array([3, 1]))
    assert sub.ids == ["p3", "p1"]
    assert sub.ts.tolist() == [3.0, 1.0]
    assert sub.numeric[:, 0].tolist() == [3.0, 1.0]
    assert sub.categorical.tolist() == cols.categorical[[3, 1]].tolist()


def test_label_columns() -> None:
    raw = [
        b'{"kind":"label","id":"a","model":"m","ts":5.0,"label":"spam"}',
        b'{"kind":"label","id":"b","model":"m","ts":6.0,"label":"ham"}',
    ]
    heads = [msgspec.json.decode(r, type=LabelHead) for r in raw]
    classes = Vocab(["ham"])
    cols = label_columns(heads, classes)
    assert cols.ids == ["a", "b"]
    assert cols.ts.tolist() == [5.0, 6.0]
    assert cols.label.tolist() == [1.0, 0.0]
    assert cols.take(np.array([1])).ids == ["b"]


def test_empty_batches_have_the_right_shapes() -> None:
    schema = ModelSchema("m", SETTINGS)
    assert schema.numeric_matrix([]).shape == (0, 2)
    assert schema.categorical_matrix([], [Vocab(), Vocab()]).shape == (0, 2)
