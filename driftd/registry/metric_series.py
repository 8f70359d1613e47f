"""Step-wise metric series of runs (epoch or step -> value): checked, stored, read back, and
drawn as a sparkline. A run's ``metrics`` keep its final numbers; its learning curves live here,
so that epoch 7 of ``loss`` is a row, not a name such as ``loss_epoch_7``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.errors import InvalidRequest

MAX_KEY_CHARS = 255
BLOCKS = "▁▂▃▄▅▆▇█"

# A series as callers give it: key -> [(step, value), ...]; a value that is not finite is kept
# as None (NULL), never dropped.
Steps = Mapping[str, Sequence[tuple[int, float | None]]]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of a series: its step (epoch), the value (None: not finite) and when it was
    recorded."""

    step: int
    value: float | None
    ts: float

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-able data."""
        return {"step": self.step, "value": self.value, "ts": self.ts}


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def check_steps(steps: Steps) -> dict[str, list[tuple[int, float | None]]]:
    """``steps`` as plain lists sorted by step, NaN and infinities as None; InvalidRequest for
    an empty or over-long key, a negative or non-integer step, or a step given twice."""
    out: dict[str, list[tuple[int, float | None]]] = {}
    for key, points in steps.items():
        if not key or len(key) > MAX_KEY_CHARS or "\x00" in key:
            raise InvalidRequest(f"metric key {key!r} must be 1 to {MAX_KEY_CHARS} characters")
        seen: dict[int, float | None] = {}
        for point in points:
            step, value = point[0], point[1]
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise InvalidRequest(f"metric {key!r}: step {step!r} must be an integer ≥ 0")
            if step in seen:
                raise InvalidRequest(f"metric {key!r}: step {step} is given twice")
            seen[step] = _finite(value)
        out[key] = sorted(seen.items())
    return out


def epoch_series(history: Sequence[Mapping[str, float]]) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch metric dicts (epoch 1 first, as trainers report them) as one series per key."""
    out: dict[str, list[tuple[int, float]]] = {}
    for epoch, metrics in enumerate(history, 1):
        for key, value in metrics.items():
            out.setdefault(key, []).append((epoch, float(value)))
    return out


def insert_steps(
    conn: sa.Connection, run_id: str, steps: Mapping[str, Sequence[tuple[int, float | None]]],
    now: float,
) -> int:  # fmt: skip
    """Store checked ``steps`` of one run, recorded at ``now``; how many points."""
    rows = [
        {"run_id": run_id, "key": key, "step": step, "value": value, "ts": now}
        for key, points in steps.items()
        for step, value in points
    ]
    if rows:
        conn.execute(t.run_metric_steps.insert(), rows)
    return len(rows)


def existing_steps(conn: sa.Connection, run_id: str, keys: Iterable[str]) -> set[tuple[str, int]]:
    """The (key, step) pairs of ``keys`` that ``run_id`` already has."""
    s = t.run_metric_steps.c
    rows = conn.execute(
        sa.select(s.key, s.step).where((s.run_id == run_id) & s.key.in_(list(keys)))
    )
    return {(r.key, int(r.step)) for r in rows}


def read_series(
    conn: sa.Connection, run_ids: Sequence[str], keys: Sequence[str] | None = None
) -> dict[str, dict[str, list[MetricPoint]]]:
    """run id -> key -> its points by step (runs without series are absent)."""
    if not run_ids:
        return {}
    s = t.run_metric_steps.c
    query = sa.select(t.run_metric_steps).where(s.run_id.in_(list(run_ids)))
    if keys:
        query = query.where(s.key.in_(list(keys)))
    out: dict[str, dict[str, list[MetricPoint]]] = {}
    for r in conn.execute(query.order_by(s.run_id, s.key, s.step)):
        value = None if r.value is None else float(r.value)
        point = MetricPoint(int(r.step), value, float(r.ts))
        out.setdefault(r.run_id, {}).setdefault(r.key, []).append(point)
    return out


def _buckets(values: Sequence[float | None], width: int) -> list[float | None]:
    """``values`` averaged into at most ``width`` buckets (None where a bucket has no number)."""
    if len(values) <= width:
        return list(values)
    out: list[float | None] = []
    for i in range(width):
        part = [v for v in values[i * len(values) // width : (i + 1) * len(values) // width]]
        nums = [v for v in part if v is not None]
        out.append(sum(nums) / len(nums) if nums else None)
    return out


def sparkline(values: Sequence[float | None], width: int = 40) -> str:
    """A series drawn with ``▁▂▃▄▅▆▇█``, lowest to highest, at most ``width`` characters
    (longer series are averaged into buckets); a missing value is a space, a flat series sits
    in the middle.

    >>> sparkline([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    '▁▂▃▄▅▆▇█'
    >>> sparkline([0.5, None, 0.5])
    '▄ ▄'
    """
    points = _buckets(values, max(width, 1))
    nums = [v for v in points if v is not None]
    if not nums:
        return " " * len(points)
    lo, hi = min(nums), max(nums)
    top = len(BLOCKS) - 1
    chars = []
    for v in points:
        if v is None:
            chars.append(" ")
        elif hi == lo:
            chars.append(BLOCKS[top // 2])
        else:
            chars.append(BLOCKS[round((v - lo) / (hi - lo) * top)])
    return "".join(chars)
