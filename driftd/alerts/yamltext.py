"""A small YAML writer for rules files: block mappings and lists, multi-line strings as literal
blocks, plain scalars only where YAML cannot read them as anything but that string. Enough for
plain data (dicts, lists, str, int, float, bool); what it writes loads back unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_:./-]*|[0-9]+[smhdwy]")  # names, durations
_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: Any) -> str:
    """One value on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} as YAML")
    if _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value
    if value.isprintable() and "'" not in value and value == value.strip():
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


def _block(value: str, indent: str) -> list[str] | None:
    """A literal block for a multi-line string, or None where one cannot hold it exactly."""
    lines = value.split("\n")
    if (
        len(lines) < 2
        or not all(line.isprintable() and line == line.rstrip() for line in lines)
        or lines[0].startswith(" ")
        or not lines[-1]
    ):
        return None
    return ["|-", *[f"{indent}{line}" if line else "" for line in lines]]


def _value(value: Any, indent: str) -> list[str]:
    """``value`` after ``key:`` (first item on the same line) or under it."""
    if isinstance(value, Mapping):
        return ["{}"] if not value else ["", *_mapping(value, indent)]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ["[]"] if not value else ["", *_list(value, indent)]
    if isinstance(value, str) and "\n" in value and (block := _block(value, indent)):
        return block
    return [scalar(value)]


def _mapping(value: Mapping[str, Any], indent: str) -> list[str]:
    out = []
    for key, item in value.items():
        first, *rest = _value(item, indent + "  ")
        out.append(f"{indent}{scalar(key)}:" + (f" {first}" if first else ""))
        out.extend(rest)
    return out


def _list(value: Sequence[Any], indent: str) -> list[str]:
    out = []
    for item in value:
        if isinstance(item, Mapping) and item:
            lines = _mapping(item, indent + "  ")
            out.append(f"{indent}- {lines[0].lstrip()}")
            out.extend(lines[1:])
        else:
            first, *rest = _value(item, indent + "  ")
            out.append(f"{indent}- {first}".rstrip())
            out.extend(rest)
    return out


def dump(doc: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """The document as YAML text, after ``header`` as comment lines."""
    comments = [f"# {line}".rstrip() for line in header]
    return "\n".join([*comments, *_mapping(doc, "")]) + "\n"
