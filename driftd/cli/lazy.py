"""A click group whose subcommands are imported when one runs (click's documented lazy-loading
pattern), so that ``driftd --help`` and ``driftd --version`` import none of them."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Lazy:
    """A subcommand at ``target`` (``module:attribute``), listed in the group's help by
    ``short_help`` (shown as is) or ``help`` (the first paragraph of its docstring, which click
    shortens to fit) without importing it."""

    target: str
    help: str | None = None
    short_help: str | None = None

    def load(self) -> click.Command:
        """Import the command."""
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command

    def stand_in(self, name: str) -> click.Command:
        """A command that only lists as the real one does."""
        return click.Command(name, help=self.help, short_help=self.short_help)


class LazyGroup(click.Group):
    """A group with ``lazy`` subcommands besides its own: each is imported on first use; the
    group's help lists them all without importing any."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = {
            name: self.commands.get(name) or self.lazy[name].stand_in(name)
            for name in self.list_commands(ctx)
        }
        click.Group(commands=listed).format_commands(ctx, formatter)
