"""PromQL text: quoted label values, model matchers, durations and numbers as rules print them,
and ``cohorts``, which splits the configured models by the value a rule needs so that models
sharing a value share a rule (and models that are not configured get the default)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from driftd.alerts.leader import selector

__all__ = ["Cohort", "any_of", "cohorts", "duration", "label", "num", "per_cohort", "selector"]

T = TypeVar("T", bound=Hashable)
_RE2_SPECIAL = set(r"\.+*?()|[]{}^$")


def label(name: str, value: str, op: str = "=") -> str:
    """``name="value"`` with the value quoted as a PromQL string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}{op}"{escaped}"'


def _regex(values: tuple[str, ...]) -> str:
    """An RE2 alternation that matches exactly these values."""
    return "|".join("".join("\\" + c if c in _RE2_SPECIAL else c for c in v) for v in values)


def num(x: float) -> str:
    """A number as a rule prints it: shortest of 12 significant digits (0.005, 14.4)."""
    return f"{x:.12g}"


def duration(seconds: int) -> str:
    """A PromQL duration in the largest whole unit (3600 -> 1h, 5400 -> 90m)."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds}")
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Cohort(Generic[T]):
    """Models that share ``value``: ``matcher`` selects them (empty: every model)."""

    value: T
    matcher: str
    models: tuple[str, ...]  # the configured models among them
    default: bool  # whether models that are not configured belong here too


def cohorts(values: Mapping[str, T | None], default: T) -> list[Cohort[T]]:
    """Split configured models by value (``None``: this rule is off for that model). The first
    cohort has ``default``: every model but the configured ones with another value (so a model
    driftd is not configured for still gets the default rule); then one per other value."""
    groups: dict[T, list[str]] = {}
    for model in sorted(values):
        value = values[model]
        if value is not None:
            groups.setdefault(value, []).append(model)
    others = tuple(sorted(m for m, v in values.items() if v != default))
    out = [
        Cohort(
            default,
            label("model", _regex(others), "!~") if others else "",
            tuple(groups.pop(default, [])),
            True,
        )
    ]
    for value, models in sorted(groups.items(), key=lambda kv: kv[1]):
        names = tuple(models)
        matcher = (
            label("model", names[0]) if len(names) == 1 else label("model", _regex(names), "=~")
        )
        out.append(Cohort(value, matcher, names, False))
    return out


def any_of(parts: list[str]) -> str:
    """One expression from several (each cohort's): ``(a) or (b)``; one part stays as it is.
    Prometheus refuses two rules of one name and labels, so cohorts share a rule."""
    if len(parts) == 1:
        return parts[0]
    blocks = ["(\n" + "\n".join(f"  {line}" for line in p.split("\n")) + "\n)" for p in parts]
    return "\nor\n".join(blocks)


def per_cohort(groups: list[Cohort[T]], text: Callable[[T], str]) -> str:
    """``text`` of the one value, or of each cohort's: "X for a, b; Y for the other models"."""
    if len(groups) == 1:
        return text(groups[0].value)
    named = [f"{text(c.value)} for {', '.join(c.models)}" for c in groups if not c.default]
    rest = [f"{text(c.value)} for the other models" for c in groups if c.default]
    return "; ".join(named + rest)
