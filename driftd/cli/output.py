"""How registry commands print: JSON, human lines and rich tables with stored text escaped."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import click

from driftd.textsafe import markup_safe, safe

if TYPE_CHECKING:
    from rich.console import Console


def echo_json(obj: Any, strict: bool = False) -> None:
    """Print ``obj`` as indented JSON; what JSON cannot hold is printed as its ``str``, or is
    a TypeError when ``strict``."""
    click.echo(json.dumps(obj, indent=2, default=None if strict else str))


def say(text: str, err: bool = False) -> None:
    """Print one human line; stored and typed text in it is escaped (driftd.textsafe)."""
    click.echo(safe(text), err=err)


def cells(*values: object) -> list[str]:
    """One table row for rich: each cell escaped, rich markup included."""
    return [markup_safe(v) for v in values]


def when(ts: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` for none."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def console() -> Console:
    """A rich console on stdout (rich is imported only by the commands that print tables)."""
    from rich.console import Console

    return Console()
