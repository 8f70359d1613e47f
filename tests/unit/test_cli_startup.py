"""``driftd --help`` and ``driftd --version`` import no subcommand: none of the heavy libraries
and none of the simulator load, yet the help lists every command as the command itself does."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from driftd.cli.lazy import LazyGroup
from driftd.cli.main import COMMANDS

# What a subcommand may need and a bare start-up must not load.
HEAVY = (
    "torch",
    "pyarrow",
    "optuna",
    "fastapi",
    "numba",
    "sqlalchemy",
    "scipy",
    "kafka",
    "numpy",
    "pydantic",
    "driftd.sim",
    "driftd.config",
    "driftd.daemon",
    "driftd.registry",
)
PROBE = """
import json, sys
sys.argv = ["driftd", sys.argv[1]]
from driftd.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("arg", "shows"), [("--version", "driftd, version "), ("--help", "Usage: driftd")]
)
def test_help_and_version_import_nothing_heavy(arg: str, shows: str) -> None:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, arg], capture_output=True, text=True, timeout=60, check=False
    )
    report = json.loads(res.stderr.strip().splitlines()[-1])
    assert report["code"] == 0
    assert res.stdout.startswith(shows)
    loaded = [m for m in report["modules"] if m.startswith(HEAVY)]
    assert loaded == []


def listing(group: click.Group, width: int) -> str:
    """The "Commands:" section of the group's help at a terminal ``width``."""
    ctx = click.Context(group, info_name="driftd", terminal_width=width, max_content_width=100)
    formatter = ctx.make_formatter()
    group.format_commands(ctx, formatter)
    return formatter.getvalue()


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_the_help_lists_each_command_as_the_command_itself_does(width: int) -> None:
    lazy = LazyGroup(lazy=COMMANDS)
    loaded = click.Group(commands={name: spec.load() for name, spec in COMMANDS.items()})
    assert listing(lazy, width) == listing(loaded, width)
    assert lazy.commands == {}  # listing imported nothing


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_loads_under_its_own_name(name: str) -> None:
    group = LazyGroup(lazy=COMMANDS)
    command = group.get_command(click.Context(group), name)
    assert command is not None
    assert command.name == name
