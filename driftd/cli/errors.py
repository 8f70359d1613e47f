"""How the command line shows failures: driftd's own errors and an unreachable database are
one line on stderr (``Error: ...``) with a stable exit code (``driftd.cli.exitcodes``); with
``--json`` stdout also gets ``{"error": ..., "exit_code": N}``, so it always holds one JSON
document. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from driftd.cli.exitcodes import Exit
from driftd.errors import ConfigError, DriftdError
from driftd.textsafe import safe, safe_lines

JSON_ERRORS = (
    "\b\nWith --json, stdout is one JSON document: the result, or on failure\n"
    '  {"error": "<message>", "exit_code": N}\n'
    "(the message is on stderr too). Logs go to stderr, as JSON lines off a terminal."
)


class Failure(click.ClickException):
    """A driftd error shown as ``Error: <message>`` on stderr; exit code 1."""

    exit_code = Exit.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(safe_lines(message))


class ConfigFailure(Failure):
    """A bad configuration: exit code 2, as click's usage errors."""

    exit_code = Exit.USAGE


class Refused(Failure):
    """A refusal: a gate not satisfied, an approval not allowed; exit code 3."""

    exit_code = Exit.REFUSED


class VerifyFailed(Failure):
    """A verification that failed: a snapshot's content hash, the audit chain; exit code 5."""

    exit_code = Exit.VERIFY_FAILED


def _is(exc: BaseException, module: str, *names: str) -> bool:
    """Whether ``exc`` is one of ``module``'s ``names`` (only loaded modules are looked at, so
    the command line's start-up imports none of them)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, tuple(getattr(loaded, n) for n in names))


def _unreachable(exc: BaseException) -> bool:
    """A failed database connection (``driftd.db`` is only loaded by commands that use one)."""
    return _is(exc, "driftd.db", "DatabaseUnreachable")


def failure(exc: BaseException) -> Failure:
    """The command-line failure for a driftd error, with the exit code of its kind."""
    if isinstance(exc, ConfigError):
        return ConfigFailure(str(exc))  # may span lines: one per problem
    if _is(exc, "driftd.registry.errors", "RegistryError"):
        message = safe(str(exc))  # one line, whatever stored text it quotes
        if _is(exc, "driftd.registry.errors", "Forbidden", "GateNotSatisfied"):
            return Refused(message)
        return Failure(message)
    if _is(exc, "driftd.retrain.snapshot", "SnapshotIntegrityError"):
        return VerifyFailed(str(exc))
    return Failure(str(exc))


def json_error(exc: click.ClickException) -> str:
    """The JSON document a failed command prints on stdout under ``--json``."""
    return json.dumps({"error": exc.format_message(), "exit_code": int(exc.exit_code)})


class DriftdGroup(click.Group):
    """The top-level group: driftd's own errors and an unreachable database become one line on
    stderr with their exit code (``failure``) instead of a traceback; under ``--json`` the
    error is also a JSON document on stdout."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Seen before any parsing, so that even a bad command line answers in JSON.
        ctx.meta["driftd.json"] = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as exc:
            if ctx.meta["driftd.json"]:
                click.echo(json_error(exc))
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        except click.ClickException as exc:
            if ctx.meta.get("driftd.json"):
                click.echo(json_error(exc))
            raise
        except click.Abort:  # a declined or unanswerable prompt: exit 1, as click's
            if ctx.meta.get("driftd.json"):
                click.echo(json.dumps({"error": "aborted", "exit_code": int(Exit.ERROR)}))
            raise

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DriftdError as exc:
            raise failure(exc) from None
        except Exception as exc:
            if _unreachable(exc):
                raise Failure(str(exc)) from None
            raise
