"""How commands print: one JSON document, human lines and rich tables, with stored text
escaped, times as ISO 8601 in UTC, and nothing cut short when stdout is not a terminal."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from driftd.textsafe import markup_safe, safe

if TYPE_CHECKING:
    from rich.console import Console

# Keys whose numbers are Unix times: ``ts``, ``*_ts``, ``*_at`` and these; ``drift_at`` is a
# fraction of a stream, not a time.
TIME_KEYS = frozenset(
    {"ts", "at", "valid_from", "valid_to", "window_start", "window_end", "reference_start",
     "reference_end", "since", "until"}
)  # fmt: skip
NOT_TIMES = frozenset({"drift_at"})


def iso(ts: float) -> str:
    """A Unix time as ISO 8601 in UTC: ``2026-12-01T10:00:00Z``, with milliseconds when the
    time has a fraction of a second."""
    t = dt.datetime.fromtimestamp(ts, dt.UTC)
    text = t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def is_time_key(key: str) -> bool:
    """Whether a JSON field of this name holds a Unix time."""
    if key in NOT_TIMES:
        return False
    return key in TIME_KEYS or key.endswith(("_at", "_ts"))


def iso_times(obj: Any, key: str = "") -> Any:
    """``obj`` with every number under a time key (``is_time_key``), at any depth, as
    ``iso``; everything else as it is."""
    if isinstance(obj, dict):
        return {k: iso_times(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [iso_times(v, key) for v in obj]
    if isinstance(obj, int | float) and not isinstance(obj, bool) and is_time_key(key):
        try:
            return iso(obj)
        except (OverflowError, OSError, ValueError):  # not a time after all: left as it is
            return obj
    return obj


def echo_json(obj: Any, strict: bool = False, times: bool = True) -> None:
    """Print ``obj`` as one indented JSON document, its times as ISO 8601 (unless not
    ``times``); what JSON cannot hold is printed as its ``str``, or is a TypeError when
    ``strict``."""
    doc = iso_times(obj) if times else obj
    click.echo(json.dumps(doc, indent=2, default=None if strict else str))


def say(text: str, err: bool = False) -> None:
    """Print one human line; stored and typed text in it is escaped (driftd.textsafe)."""
    click.echo(safe(text), err=err)


def cells(*values: object) -> list[str]:
    """One table row for rich: each cell escaped, rich markup included."""
    return [markup_safe(v) for v in values]


def when(ts: float | None) -> str:
    """A Unix time as ISO 8601 in UTC to the second (``2026-12-01T10:00:00Z``); ``-`` for
    none."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def on_terminal() -> bool:
    """Whether stdout is a terminal (a person reading), not a pipe, a file or a test."""
    return sys.stdout.isatty()


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with ``…`` on a terminal; whole off one, where
    scripts read it."""
    if not on_terminal() or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def console() -> Console:
    """A rich console on stdout (rich is imported only by the commands that print tables).

    Off a terminal it neither wraps nor truncates: a table is as wide as its widest cells,
    so a pipe or a file gets whole dates, headers and JSON.
    """
    from rich.console import Console

    if on_terminal():
        return Console()
    return Console(width=100_000, soft_wrap=True, no_color=True, highlight=False)
