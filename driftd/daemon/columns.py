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
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from driftd.config import ModelSettings
from driftd.events import LabelHead, PredictionHead

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

MISSING = -1  # code for an absent categorical value
OTHER = -2  # code for a category beyond the vocabulary's cap


class Vocab:
    """A bounded string -> int32 code table; codes are stable once given."""

    __slots__ = ("_codes", "cap", "values")

    def __init__(self, values: Sequence[str] = (), cap: int | None = None) -> None:
        self.values: list[str] = list(values)
        self._codes: dict[str, int] = {v: i for i, v in enumerate(self.values)}
        self.cap = cap

    def code(self, value: str) -> int:
        """The code of one value, adding it when there is room."""
        c = self._codes.get(value)
        if c is None:
            if self.cap is not None and len(self.values) >= self.cap:
                return OTHER
            c = len(self.values)
            self._codes[value] = c
            self.values.append(value)
        return c

    def codes(self, items: Sequence[Any]) -> I32:
        """Codes for many values; None maps to MISSING, non-strings are stringified."""
        out: list[int | None] = list(map(self._codes.get, items))  # known strings, at C speed
        if None in out:
            for i, c in enumerate(out):
                if c is None:
                    v = items[i]
                    out[i] = (
                        MISSING if v is None else self.code(v if isinstance(v, str) else str(v))
                    )
        return np.array(out, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class PredictionColumns:
    """A batch of predictions of one model, as columns."""

    ids: list[str]
    version: I32
    ts: F64
    numeric: F64  # (n, number of numeric features)
    categorical: I32  # (n, number of categorical features)
    prediction: F64  # the value, or the class code for string targets
    score: F64  # NaN when absent
    latency_ms: F64  # NaN when absent
    error: Bool

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: npt.NDArray[np.intp]) -> PredictionColumns:
        """The rows at ``idx``, as a new batch."""
        ids = self.ids
        return PredictionColumns(
            ids=[ids[i] for i in idx.tolist()],
            version=self.version[idx],
            ts=self.ts[idx],
            numeric=self.numeric[idx],
            categorical=self.categorical[idx],
            prediction=self.prediction[idx],
            score=self.score[idx],
            latency_ms=self.latency_ms[idx],
            error=self.error[idx],
        )


@dataclass(frozen=True, slots=True)
class LabelColumns:
    """A batch of labels of one model, as columns."""

    ids: list[str]
    ts: F64
    label: F64  # the value, or the class code for string targets

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: npt.NDArray[np.intp]) -> LabelColumns:
        """The rows at ``idx``, as a new batch."""
        ids = self.ids
        return LabelColumns([ids[i] for i in idx.tolist()], self.ts[idx], self.label[idx])


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


def target_column(values: Sequence[float | str], classes: Vocab) -> F64:
    """Numeric targets as they are; string targets as class codes."""
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        return np.array(
            [v if type(v) is float else float(classes.code(str(v))) for v in values],
            dtype=np.float64,
        )


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
        prediction=target_column([h.prediction for h in heads], classes),
        score=np.array([h.score for h in heads], dtype=np.float64),  # None becomes NaN
        latency_ms=np.array([h.latency_ms for h in heads], dtype=np.float64),
        error=np.array([h.error is not None for h in heads], dtype=np.bool_),
    )


def label_columns(heads: Sequence[LabelHead], classes: Vocab) -> LabelColumns:
    """Columns for label heads of one model."""
    return LabelColumns(
        ids=[h.id for h in heads],
        ts=np.fromiter(map(_TS, heads), dtype=np.float64, count=len(heads)),
        label=target_column([h.label for h in heads], classes),
    )
