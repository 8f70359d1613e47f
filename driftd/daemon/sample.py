"""A bounded uniform sample of rows that is the same whatever the partitioning.

``Sample`` keeps rows of feature values with their event-id hashes and event times, capped to
the rows with the smallest (hash, time): the smallest of a union is the smallest of the parts'
smallest, so any split of the rows, merged in any order, keeps the same sample. The window
checks and the performance estimators sample their windows and references with it. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]


@dataclass
class Sample:
    """Rows of feature values with their event-id hashes and times, capped to a uniform
    sample: the rows with the smallest (hash, time)."""

    keys: U32
    ts: F64
    values: F64  # (rows, features)

    @classmethod
    def empty(cls, width: int) -> Sample:
        return cls(np.empty(0, np.uint32), np.empty(0), np.empty((0, width)))

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, other: Sample, cap: int) -> Sample:
        """The union with ``other``, capped to ``cap`` rows by (hash, time)."""
        keys = np.concatenate([self.keys, other.keys])
        ts = np.concatenate([self.ts, other.ts])
        values = np.concatenate([self.values, other.values])
        if len(keys) > cap:
            keep = np.lexsort((ts, keys))[:cap]
            keys, ts, values = keys[keep], ts[keep], values[keep]
        return Sample(keys, ts, values)

    def ordered(self) -> Sample:
        """The rows in (hash, time) order: the same order for any partitioning, so that an
        estimator whose resampling is positional gives the same answer."""
        order = np.lexsort((self.ts, self.keys))
        return Sample(self.keys[order], self.ts[order], self.values[order])

    def take(self, mask: npt.NDArray[np.bool_]) -> Sample:
        return Sample(self.keys[mask], self.ts[mask], self.values[mask])

    def state(self) -> list[Any]:
        return [self.keys, self.ts, self.values]

    @classmethod
    def from_state(cls, s: Sequence[Any], width: int) -> Sample:
        return cls(
            np.asarray(s[0], np.uint32),
            np.asarray(s[1], np.float64),
            np.asarray(s[2], np.float64).reshape(-1, width),
        )


def merge(held: Sample | None, part: Sample, cap: int) -> Sample:
    return (
        Sample.empty(part.values.shape[1]).add(part, cap) if held is None else held.add(part, cap)
    )
