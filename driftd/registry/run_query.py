"""Which runs to show and how they differ: filters, sort and a side-by-side comparison, pure
functions over ``RunInfo`` records (the registry fetches, these decide), shared by
``driftd runs`` and ``GET /api/v1/runs``.

>>> parse_condition("roc_auc>=0.8")
MetricCondition(key='roc_auc', op='>=', value=0.8)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftd.registry.errors import InvalidRequest
from driftd.registry.records import DatasetInfo, RunInfo

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|!=|==|=|>|<)\s*(\S+)\s*$")
# Fields a run sorts by besides ``metrics.NAME``, ``params.NAME`` and ``tags.NAME``.
SORT_FIELDS = ("started_at", "ended_at", "duration", "status", "model", "id")
# The sections of a comparison, in the order they are shown.
SECTIONS = ("params", "metrics", "seeds", "code", "environment", "dataset", "trigger", "tags")


@dataclass(frozen=True, slots=True)
class MetricCondition:
    """``key op value``: e.g. ``roc_auc >= 0.8``; a run without the metric never matches."""

    key: str
    op: str
    value: float

    def matches(self, run: RunInfo) -> bool:
        """Whether ``run``'s final metric ``key`` satisfies the condition."""
        got = run.metrics.get(self.key)
        if isinstance(got, bool) or not isinstance(got, int | float) or math.isnan(got):
            return False
        return OPS[self.op](float(got), self.value)


def parse_condition(text: str) -> MetricCondition:
    """``NAME OP NUMBER`` with OP one of ``> >= < <= = == !=``; InvalidRequest otherwise."""
    m = _CONDITION.match(text)
    if m is None:
        raise InvalidRequest(
            f"metric condition {text!r}: expected NAME OP NUMBER with OP one of "
            f"{', '.join(sorted(set(OPS)))}, e.g. roc_auc>=0.8"
        )
    try:
        value = float(m.group(3))
    except ValueError:
        raise InvalidRequest(f"metric condition {text!r}: {m.group(3)!r} is not a number") from None
    return MetricCondition(m.group(1), m.group(2), value)


def parse_tag(text: str) -> tuple[str, str | None]:
    """``key=value`` (the tag equals the value, as text) or ``key`` (the run has the tag)."""
    key, eq, value = text.partition("=")
    if not key:
        raise InvalidRequest(f"tag filter {text!r}: expected KEY or KEY=VALUE")
    return key, value if eq else None


def _text(value: Any) -> str:
    """A tag's value as the text a filter compares: JSON's spelling for booleans and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What ``runs ls`` keeps: every given criterion must hold (model and status are applied
    by the registry's query, and again here so the filter stands alone)."""

    model: str | None = None
    status: str | None = None
    trigger: str | None = None  # the trigger's kind: manual, alarm, schedule, ...
    tags: tuple[tuple[str, str | None], ...] = ()
    metrics: tuple[MetricCondition, ...] = ()

    def matches(self, run: RunInfo) -> bool:
        """Whether ``run`` passes every criterion."""
        if self.model is not None and run.model != self.model:
            return False
        if self.status is not None and run.status != self.status:
            return False
        if self.trigger is not None and (run.trigger or {}).get("kind") != self.trigger:
            return False
        for key, value in self.tags:
            if key not in run.tags or (value is not None and _text(run.tags[key]) != value):
                return False
        return all(c.matches(run) for c in self.metrics)


def check_sort(key: str) -> str:
    """``key`` when runs can be sorted by it; InvalidRequest naming the valid forms."""
    section, dot, name = key.partition(".")
    if key in SORT_FIELDS or (dot and name and section in ("metrics", "params", "tags")):
        return key
    raise InvalidRequest(
        f"sort key {key!r}: expected one of {', '.join(SORT_FIELDS)}, or metrics.NAME, "
        "params.NAME, tags.NAME"
    )


def sort_value(run: RunInfo, key: str) -> Any:
    """The value ``run`` sorts by under ``key`` (None when it has none)."""
    if key == "duration":
        return None if run.ended_at is None else run.ended_at - run.started_at
    if key in SORT_FIELDS:
        return getattr(run, key)
    section, _, name = key.partition(".")
    value = getattr(run, section).get(name)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _order_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, so mixed values still sort; each by its own order."""
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value))


def select_runs(
    runs: Sequence[RunInfo],
    flt: RunFilter,
    sort: str = "started_at",
    descending: bool = True,
    limit: int | None = None,
) -> list[RunInfo]:
    """The runs that pass ``flt``, ordered by ``sort`` (runs without that value last, then by
    id), at most ``limit`` of them."""
    check_sort(sort)
    kept = [r for r in runs if flt.matches(r)]
    has = sorted(
        (r for r in kept if sort_value(r, sort) is not None),
        key=lambda r: (_order_key(sort_value(r, sort)), r.id),
        reverse=descending,
    )
    missing = sorted((r for r in kept if sort_value(r, sort) is None), key=lambda r: r.id)
    ordered = has + missing
    return ordered if limit is None else ordered[:limit]


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out |= flatten(v, f"{name}.")
        else:
            out[name] = v
    return out


def _dataset_fields(ds: DatasetInfo | None) -> dict[str, Any]:
    if ds is None:
        return {}
    keys = ("id", "sha256", "row_count", "window_start", "window_end", "uri")
    return {k: getattr(ds, k) for k in keys}


def section_values(run: RunInfo, section: str, ds: DatasetInfo | None) -> dict[str, Any]:
    """One section of a run as flat ``key -> value``."""
    if section == "dataset":
        return _dataset_fields(ds)
    if section == "trigger":
        return flatten(run.trigger or {})
    return flatten(getattr(run, section))


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One field across the compared runs: its value in each (None where a run lacks it)."""

    section: str
    key: str
    values: list[Any]
    differs: bool

    @property
    def name(self) -> str:
        """``section.key``, as the ``differs`` list names it."""
        return f"{self.section}.{self.key}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs side by side: each field of each section, and the names of those that differ."""

    runs: list[str]
    rows: list[CompareRow] = field(default_factory=list)

    @property
    def differs(self) -> list[str]:
        """``section.key`` of every field whose values are not all equal."""
        return [r.name for r in self.rows if r.differs]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``runs``, ``sections`` (section -> key -> the values, in the order of
        ``runs``) and ``differs``. Values are lists under their own key, so a time field
        (``window_start``) keeps its name for readers and for ISO 8601 conversion."""
        sections: dict[str, dict[str, list[Any]]] = {s: {} for s in SECTIONS}
        for row in self.rows:
            sections[row.section][row.key] = list(row.values)
        return {"runs": self.runs, "sections": sections, "differs": self.differs}


def _same(values: list[Any]) -> bool:
    """Whether all values are equal (two NaNs count as equal: the same non-number)."""
    first = values[0]
    for v in values[1:]:
        both_nan = isinstance(v, float) and isinstance(first, float) and math.isnan(v)
        if v != first and not (both_nan and math.isnan(first)):
            return False
    return True


def compare_runs(
    runs: Sequence[RunInfo], datasets: Mapping[int, DatasetInfo] | None = None
) -> Comparison:
    """Params, metrics, seeds, code, environment, dataset, trigger and tags of ``runs`` side by
    side; a field differs when its values (a missing one counts as None) are not all equal."""
    if len(runs) < 2:
        raise InvalidRequest(f"compare needs at least two runs, got {len(runs)}")
    ids = [r.id for r in runs]
    if len(set(ids)) != len(ids):
        raise InvalidRequest(f"compare needs distinct runs, got {', '.join(ids)}")
    dss = datasets or {}
    rows: list[CompareRow] = []
    for section in SECTIONS:
        per_run = [
            section_values(r, section, dss.get(r.dataset_id) if r.dataset_id else None)
            for r in runs
        ]
        keys = sorted({k for values in per_run for k in values})
        for key in keys:
            values = [values.get(key) for values in per_run]
            rows.append(CompareRow(section, key, values, not _same(values)))
    return Comparison(ids, rows)
