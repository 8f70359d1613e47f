"""Columnar batches: decoded events as numpy columns, one model at a time.

Each model's feature schema is compiled into a msgspec Struct, so a batch's raw feature
objects decode in one call straight into typed fields, and numeric features become one
float64 matrix with NaN for missing values. Strings (categories, versions, string labels)
become int32 codes through bounded vocabularies that are part of the checkpointed state.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np

from driftd.config import ModelSettings
from driftd.contracts.columns import (
    F64,
    I32,
    JoinedColumns,
    LabelColumns,
    PredictionColumns,
    Vocab,
    no_scores,
)
from driftd.contracts.events import LabelHead, PredictionHead


def _feature_struct(name: str, settings: ModelSettings, strict: bool) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for i, (feature, kind) in enumerate(settings.features.items()):
        attr = f"f{i}"
        rename[attr] = feature
        typ: Any = float | None if kind == "numeric" else str | int | None
        fields.append((attr, typ, None))
    return msgspec.defstruct(
        f"Features_{name}",
        fields,
        rename=rename,
        forbid_unknown_fields=strict,
        gc=False,
        frozen=True,
    )


def _getter(attrs: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    if len(attrs) == 1:
        one = operator.attrgetter(attrs[0])
        return lambda s: (one(s),)
    return operator.attrgetter(*attrs)


class ModelSchema:
    """A model's compiled feature schema: decoders and column getters."""

    def __init__(self, name: str, settings: ModelSettings) -> None:
        self.name = name
        self.settings = settings
        kinds = list(settings.features.values())
        names = list(settings.features)
        self.class_names = tuple(settings.classes)  # the columns of ``scores``; () for none
        self.numeric_names = tuple(n for n, k in zip(names, kinds, strict=True) if k == "numeric")
        self.categorical_names = tuple(
            n for n, k in zip(names, kinds, strict=True) if k == "categorical"
        )
        attrs = [f"f{i}" for i in range(len(names))]
        self._num_get = _getter([a for a, k in zip(attrs, kinds, strict=True) if k == "numeric"])
        self._cat_gets = [
            operator.attrgetter(a) for a, k in zip(attrs, kinds, strict=True) if k == "categorical"
        ]
        self.strict_type = _feature_struct(name, settings, strict=True)
        self.lenient_type = _feature_struct(name, settings, strict=False)
        self.strict_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.strict_type)
        self.lenient_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.lenient_type)

    def numeric_matrix(self, structs: Sequence[Any]) -> F64:
        """The numeric features of decoded feature structs as an (n, k) float64 matrix."""
        k = len(self.numeric_names)
        if not k or not structs:
            return np.empty((len(structs), k), dtype=np.float64)
        flat = itertools.chain.from_iterable(map(self._num_get, structs))
        # None (a missing value) is not a float: fall back to the slower NaN-aware path.
        try:
            return np.fromiter(flat, dtype=np.float64, count=len(structs) * k).reshape(-1, k)
        except TypeError:
            return np.array(list(map(self._num_get, structs)), dtype=np.float64).reshape(-1, k)

    def categorical_matrix(self, structs: Sequence[Any], vocabs: Sequence[Vocab]) -> I32:
        """The categorical features as (n, m) int32 codes through per-feature vocabularies."""
        m = len(self.categorical_names)
        out = np.empty((len(structs), m), dtype=np.int32)
        if not m or not structs:
            return out
        for j, get in enumerate(self._cat_gets):
            out[:, j] = vocabs[j].codes(list(map(get, structs)))
        return out


def class_name(value: float | str) -> str:
    """A target's class name: a string as it is, a whole number as its digits (``2.0`` is
    ``"2"``)."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(value)


def target_column(values: Sequence[float | str], classes: Vocab, named: bool = False) -> F64:
    """Numeric targets as they are; string targets as class codes. ``named`` (a model that
    declares its classes): every target as the code of its class name, numbers included, so
    the column always holds codes whose names ``classes`` knows."""
    if named:
        return np.array([classes.code(class_name(v)) for v in values], dtype=np.float64)
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        return np.array(
            [v if type(v) is float else float(classes.code(str(v))) for v in values],
            dtype=np.float64,
        )


def scores_matrix(heads: Sequence[PredictionHead], class_names: Sequence[str]) -> F64:
    """Each prediction's ``scores`` of the model's classes as an (n, K) matrix, NaN where a
    class's score is absent; (0, 0) when the model declares no classes."""
    if not class_names:
        return no_scores()
    nan = float("nan")
    return np.array(
        [[(h.scores or {}).get(c, nan) for c in class_names] for h in heads], dtype=np.float64
    ).reshape(len(heads), len(class_names))


_TS = operator.attrgetter("ts")


def _optional(values: list[float | None]) -> F64:
    return np.array(values, dtype=np.float64)  # None becomes NaN


def prediction_columns(
    heads: Sequence[PredictionHead],
    features: Sequence[Any],
    schema: ModelSchema,
    versions: Vocab,
    categories: Sequence[Vocab],
    classes: Vocab,
) -> PredictionColumns:
    """Columns for heads of one model whose feature structs are already decoded."""
    return PredictionColumns(
        ids=[h.id for h in heads],
        version=versions.codes([h.version for h in heads]),
        ts=np.fromiter(map(_TS, heads), dtype=np.float64, count=len(heads)),
        numeric=schema.numeric_matrix(features),
        categorical=schema.categorical_matrix(features, categories),
        prediction=target_column([h.prediction for h in heads], classes, bool(schema.class_names)),
        score=np.array([h.score for h in heads], dtype=np.float64),  # None becomes NaN
        latency_ms=np.array([h.latency_ms for h in heads], dtype=np.float64),
        error=np.array([h.error is not None for h in heads], dtype=np.bool_),
        scores=scores_matrix(heads, schema.class_names),
    )


def segment_label(segment: dict[str, str] | None, keys: Sequence[str]) -> str:
    """A prediction's segment: ``key=value`` of each configured key it has, comma-joined in
    the keys' order; "" when it has none of them."""
    if not segment:
        return ""
    return ",".join(f"{k}={segment[k]}" for k in keys if k in segment)


def label_columns(heads: Sequence[LabelHead], classes: Vocab, named: bool = False) -> LabelColumns:
    """Columns for label heads of one model (``named``: as in ``target_column``)."""
    return LabelColumns(
        ids=[h.id for h in heads],
        ts=np.fromiter(map(_TS, heads), dtype=np.float64, count=len(heads)),
        label=target_column([h.label for h in heads], classes, named),
    )


def empty_predictions(schema: ModelSchema) -> PredictionColumns:
    """A batch of no predictions with the model's column shapes."""
    e = np.empty(0, dtype=np.float64)
    return PredictionColumns(
        ids=[],
        version=np.empty(0, dtype=np.int32),
        ts=e,
        numeric=np.empty((0, len(schema.numeric_names))),
        categorical=np.empty((0, len(schema.categorical_names)), dtype=np.int32),
        prediction=e,
        score=e,
        latency_ms=e,
        error=np.empty(0, dtype=np.bool_),
        scores=np.empty((0, len(schema.class_names))) if schema.class_names else no_scores(),
    )


def concat_joined(joins: list[JoinedColumns]) -> JoinedColumns | None:
    """The joins of one batch as one set of columns (None when there are none)."""
    if not joins:
        return None
    if len(joins) == 1:
        return joins[0]
    arrays = {
        f: np.concatenate([getattr(j, f) for j in joins])
        for f in JoinedColumns.__slots__
        if f != "ids"
    }
    return JoinedColumns(**arrays, ids=[i for j in joins for i in j.ids])
