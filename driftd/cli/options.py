"""The options many commands share: ``--config``, ``--db``, ``--actor``, ``--json``, and the
type of ``--at`` options (a time as ISO 8601 or Unix seconds)."""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ENV_HELP = "TOML configuration file (or DRIFTD_CONFIG)."


def config_option(
    help_text: str = ENV_HELP,
    *,
    required: bool = True,
    envvar: bool = False,
    exists: bool = False,
    dir_okay: bool = True,
) -> Callable[[F], F]:
    """``--config``/``-c FILE`` (the parameter ``config``): read from DRIFTD_CONFIG when
    ``envvar``; checked by click to exist (and not be a directory) when asked, else by
    ``load_settings``, which names the problem itself."""
    kind = click.Path(path_type=Path, exists=exists, dir_okay=dir_okay)
    return click.option(
        "--config",
        "-c",
        "config",
        type=kind,
        envvar="DRIFTD_CONFIG" if envvar else None,
        required=required,
        help=help_text,
    )


def db_options(f: F) -> F:
    """``--config`` and ``--db``: where the registry lives."""
    f = click.option(
        "--db",
        "db",
        metavar="URL",
        help="Registry database URL (default: from --config, else DRIFTD_REGISTRY__URL).",
    )(f)
    return config_option(
        "TOML configuration file; its [registry] section is used.", required=False
    )(f)


def actor_option(f: F) -> F:
    """``--actor``: who the audit log records."""
    return click.option(
        "--actor",
        default=lambda: getpass.getuser(),
        show_default="your login name",
        help="Who the audit log records as doing this.",
    )(f)


JSON_HELP = "Print one JSON document on stdout (times in ISO 8601 UTC); logs go to stderr."


def json_option(f: F) -> F:
    """``--json``: machine-readable output, one JSON document on stdout."""
    return click.option("--json", "as_json", is_flag=True, help=JSON_HELP)(f)


def parse_time(text: str) -> float:
    """Unix seconds from ``1796283076.5`` or ISO 8601 (``2026-12-01T10:00:00Z``, an offset
    such as ``+02:00``, or none: UTC); a ValueError naming both forms otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give ISO 8601 (2026-12-01T10:00:00Z) or Unix seconds"
        ) from None
    return (t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)).timestamp()


class TimeType(click.ParamType[float, Any]):
    """A time option: ISO 8601 or Unix seconds, as Unix seconds (``parse_time``)."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


TIME = TimeType()
