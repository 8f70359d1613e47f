"""Column types of a decoded batch: what the daemon hands to monitors and the rollout counts.

Numeric values are float64 columns with NaN for missing; strings (categories, versions, string
labels) are int32 codes through bounded vocabularies that are part of the checkpointed state.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

MISSING = -1  # code for an absent categorical value
OTHER = -2  # code for a category beyond the vocabulary's cap


def no_scores() -> F64:
    """The ``scores`` of a batch whose model declares no classes: a (0, 0) matrix."""
    return np.empty((0, 0))


def take_scores(scores: F64, idx: npt.NDArray[np.intp]) -> F64:
    """Rows ``idx`` of a ``scores`` matrix (none stay none)."""
    return scores[idx] if scores.shape[1] else scores


class Vocab:
    """A bounded string -> int32 code table; codes are stable once given."""

    __slots__ = ("_codes", "_keys", "cap", "values")

    def __init__(self, values: Sequence[str] = (), cap: int | None = None) -> None:
        self.values: list[str] = list(values)
        self._codes: dict[str, int] = {v: i for i, v in enumerate(self.values)}
        self._keys: F64 = np.empty(0)
        self.cap = cap

    def keys(self) -> F64:
        """Each value's stable key (CRC-32 of its UTF-8, as float64), by code: the same in
        every process, where the codes depend on arrival order. Extended as values are added."""
        if len(self._keys) < len(self.values):
            more = [zlib.crc32(v.encode()) for v in self.values[len(self._keys) :]]
            self._keys = np.concatenate([self._keys, np.asarray(more, np.float64)])
        return self._keys

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
    # (n, K) probabilities of the model's configured classes, NaN where absent; (0, 0) when
    # the model declares no classes
    scores: F64 = field(default_factory=no_scores)

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
            scores=take_scores(self.scores, idx),
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


@dataclass(frozen=True, slots=True)
class JoinedColumns:
    """Predictions joined with their labels, as columns."""

    version: I32
    ts: F64  # the prediction's time
    label_ts: F64
    numeric: F64
    categorical: I32
    prediction: F64
    score: F64
    label: F64
    ids: list[str]  # the prediction ids, for the labeled event store
    scores: F64 = field(default_factory=no_scores)  # as PredictionColumns.scores

    def __len__(self) -> int:
        return len(self.version)

    def take(self, idx: npt.NDArray[np.intp]) -> JoinedColumns:
        """The rows at ``idx``, as a new batch."""
        return JoinedColumns(
            version=self.version[idx],
            ts=self.ts[idx],
            label_ts=self.label_ts[idx],
            numeric=self.numeric[idx],
            categorical=self.categorical[idx],
            prediction=self.prediction[idx],
            score=self.score[idx],
            label=self.label[idx],
            ids=[self.ids[i] for i in idx.tolist()],
            scores=take_scores(self.scores, idx),
        )
