"""How the command line shows failures: driftd's own errors and an unreachable database are
one line on stderr (``Error: ...``), exit code 2 for a bad configuration (as click's usage
errors) and 1 otherwise; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import sys
from typing import Any

import click

from driftd.errors import ConfigError, DriftdError
from driftd.textsafe import safe_lines


class Failure(click.ClickException):
    """A driftd error shown as ``Error: <message>`` on stderr; exit code 1."""

    def __init__(self, message: str) -> None:
        super().__init__(safe_lines(message))


class ConfigFailure(Failure):
    """A bad configuration: exit code 2, as click's usage errors."""

    exit_code = 2


def _unreachable(exc: BaseException) -> bool:
    """A failed database connection (``driftd.db`` is only loaded by commands that use one)."""
    db = sys.modules.get("driftd.db")
    return db is not None and isinstance(exc, db.DatabaseUnreachable)


class DriftdGroup(click.Group):
    """The top-level group: driftd's own errors and an unreachable database become one line on
    stderr (exit 2 for a bad configuration, 1 otherwise) instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise ConfigFailure(str(exc)) from None
        except DriftdError as exc:
            raise Failure(str(exc)) from None
        except Exception as exc:
            if _unreachable(exc):
                raise Failure(str(exc)) from None
            raise
