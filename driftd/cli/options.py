"""The options many commands share: ``--config``, ``--db``, ``--actor`` and ``--json``."""

from __future__ import annotations

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


def json_option(f: F) -> F:
    """``--json``: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)
