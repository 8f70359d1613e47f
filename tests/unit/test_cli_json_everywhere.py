"""Every ``driftd`` command speaks JSON: the walk of the whole command tree (lazy entries
resolved, so commands added later are walked too) finds ``--json`` on each leaf, and each is
run with it against a real SQLite registry: stdout is exactly one JSON document, whose times
are ISO 8601 strings, and a failure is ``{"error": ..., "exit_code": N}`` with N the exit
status (``driftd --help`` says so).

Long-running commands (``run``, ``api serve``, ``outbox run``, ``retrain worker``) print ONE
summary when they stop, not a JSON line per event: stdout stays one document for every
command, so ``json.loads(stdout)`` is the only rule a script needs, and their events are
already structured log lines on stderr (JSON off a terminal). Here their blocking loop
returns at once, as after a SIGTERM right after start, so the real summary is printed.
``outbox run --once`` needs no such help.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.cli.output import is_time_key

# Leaves that may lack --json, each with its reason. serve-sim lives with the simulator
# (driftd/sim/cli.py, not the command line's package) and serves until stopped; its events
# go to Kafka or a file, its status to the log.
EXEMPT: dict[str, str] = {}  # command -> why it has no --json (none today)


def leaves(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()) -> Iterator[
    tuple[str, click.Command]
]:  # fmt: skip
    """Every leaf command under ``group`` as ("registry promote", command); lazy subcommands
    are imported by ``get_command``, as when one runs."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        sub = (*path, name)
        if isinstance(command, click.Group):
            yield from leaves(command, click.Context(command, parent=ctx, info_name=name), sub)
        else:
            yield " ".join(sub), command


LEAVES = dict(leaves(cli, click.Context(cli, info_name="driftd")))


def has_json(command: click.Command) -> bool:
    return any("--json" in p.opts for p in command.params)


def test_the_walk_finds_the_whole_tree() -> None:
    assert {"registry promote", "token create", "incidents ack", "retrain submit"} <= set(LEAVES)
    assert "db upgrade" in LEAVES and "config check" in LEAVES and "rollout status" in LEAVES


def test_every_leaf_command_has_json() -> None:
    missing = [name for name, command in LEAVES.items() if not has_json(command)]
    assert sorted(missing) == sorted(name for name in EXEMPT if name in LEAVES)
    for name in EXEMPT:  # an exemption that is no longer needed goes
        assert name not in LEAVES or not has_json(LEAVES[name]), f"{name} needs no exemption"


@dataclass
class World:
    """A generated stream and config, on a migrated SQLite registry holding: fraud/1 (the
    champion, by alice) and fraud/2 (development, by alice); spare/1 champion with spare/2 in
    canary; an open incident; a token."""

    tmp: Path
    config: Path
    events: Path
    artifact: Path
    incident: str = ""
    token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("json")
    mp = pytest.MonkeyPatch()
    mp.setenv("DRIFTD_REGISTRY__SECRET", "json-secret")
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp / "gen"), "--events", "300"])
    assert res.exit_code == 0, res.output
    config = tmp / "gen" / "driftd.toml"
    with config.open("a") as fh:
        fh.write(f'\n[registry]\nartifact_roots = ["{tmp}"]\n')
    artifact = tmp / "model.pt"
    artifact.write_bytes(b"weights" * 10)
    w = World(tmp, config, tmp / "gen" / "events.jsonl", artifact)
    _populate(w)
    yield w
    mp.undo()


def _populate(w: World) -> None:
    from driftd.config import load_settings
    from driftd.registry.configure import open_registry
    from driftd.registry.tokens import create_token, list_tokens
    from tests.registry.test_cli_incidents import _open as open_incident

    settings = load_settings(w.config)
    reg = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        digest = hashlib.sha256(w.artifact.read_bytes()).hexdigest()
        uri, size = w.artifact.resolve().as_uri(), w.artifact.stat().st_size
        for model, stage in (("fraud", "staging"), ("fraud", "development")) * 1 + (
            ("spare", "staging"),
            ("spare", "staging"),
        ):
            reg.register_version(model, uri, digest, size, "alice", stage=stage)
        reg.promote("fraud", 1, "production", "ops")
        reg.promote("spare", 1, "production", "ops")
        reg.promote("spare", 2, "canary", "ops")
        w.incident = open_incident(reg)
        create_token(reg, "ci", "viewer", "ops")
        w.token = str(list_tokens(reg)[0]["id"])
    finally:
        reg.engine.dispose()


# What each command is run with, and the exit status it must end with. A command that cannot
# run quickly (demo trains for minutes) gets arguments that fail fast; its error is JSON too.
Recipe = Callable[[World], list[str]]
RECIPES: dict[str, tuple[Recipe, int]] = {
    "api serve": (lambda w: ["--config", str(w.config), "--port", "0"], 0),
    "audit log": (lambda w: ["--config", str(w.config)], 0),
    "audit verify": (lambda w: ["--config", str(w.config)], 0),
    "config check": (lambda w: [str(w.config)], 0),
    "db upgrade": (lambda w: ["--config", str(w.config)], 0),
    "demo": (lambda w: ["--seed", "not-a-number"], 2),
    "generate": (lambda w: ["--out", str(w.tmp / "gen2"), "--events", "100"], 0),
    "incidents ack": (lambda w: [w.incident, "--config", str(w.config), "--actor", "ann"], 0),
    "incidents ls": (lambda w: ["--config", str(w.config)], 0),
    "incidents resolve": (lambda w: [w.incident, "--config", str(w.config)], 0),
    "incidents show": (lambda w: [w.incident, "--config", str(w.config)], 0),
    "lineage": (lambda w: ["fraud@champion", "--config", str(w.config)], 0),
    "outbox run": (lambda w: ["--config", str(w.config), "--once"], 0),
    "outbox status": (lambda w: ["--config", str(w.config)], 0),
    "registry alias": (lambda w: ["fraud/2", "challenger", "--config", str(w.config)], 0),
    # alice registered fraud/2: she may not approve it (refused: 3)
    "registry approve": (
        lambda w: ["fraud/2", "--for", "production", "--actor", "alice", "--config", str(w.config)],
        3,
    ),
    "registry gates": (lambda w: ["--config", str(w.config)], 0),
    "registry history": (
        lambda w: ["fraud", "--at", "2100-01-01T00:00:00Z", "--config", str(w.config)],
        0,
    ),
    "registry ls": (lambda w: ["--config", str(w.config)], 0),
    "registry promote": (lambda w: ["fraud/2", "--to", "staging", "--config", str(w.config)], 0),
    "registry register": (
        lambda w: ["fraud", "--artifact", str(w.artifact), "--config", str(w.config)],
        0,
    ),
    "registry rollback": (lambda w: ["spare", "--reason", "test", "--config", str(w.config)], 0),
    "registry show": (lambda w: ["fraud/1", "--config", str(w.config)], 0),
    "replay": (lambda w: ["--config", str(w.config), str(w.events)], 0),
    "report": (
        lambda w: [w.incident, "--config", str(w.config), "--out", str(w.tmp / "r.html")],
        0,
    ),
    "retrain jobs": (lambda w: ["--config", str(w.config)], 0),
    "retrain reproduce": (lambda w: ["no-such-run", "--config", str(w.config)], 1),
    # Training takes long (tests/retrain covers it): a model the config lacks fails at once.
    "retrain run": (lambda w: ["nope", "--config", str(w.config)], 2),
    "retrain submit": (lambda w: ["fraud", "--config", str(w.config)], 1),
    "retrain worker": (lambda w: ["--config", str(w.config)], 0),
    "run": (lambda w: ["--config", str(w.config)], 0),
    "runs compare": (lambda w: ["no-such-run", "nor-this-one", "--config", str(w.config)], 1),
    "runs gc": (lambda w: ["--config", str(w.config), "--dry-run"], 0),
    "runs ls": (lambda w: ["--config", str(w.config)], 0),
    "runs show": (lambda w: ["no-such-run", "--config", str(w.config)], 1),
    # Serving runs until stopped (tests/integration covers it): a model the config lacks.
    "serve-sim": (lambda w: ["--config", str(w.config), "--model", "nope"], 2),
    "status": (lambda w: ["--config", str(w.config)], 0),
    "token create": (lambda w: ["--name", "bot", "--role", "viewer", "--config", str(w.config)], 0),
    "token list": (lambda w: ["--config", str(w.config)], 0),
    "token revoke": (lambda w: [w.token, "--config", str(w.config)], 0),
}


def generic(command: click.Command, w: World) -> list[str]:
    """Arguments for a command without a recipe (one added later): a placeholder for each
    required parameter, the world's config and ``--yes`` where it has them. It may well fail;
    its output must be JSON all the same."""
    argv: list[str] = []
    names = {opt for p in command.params for opt in p.opts}
    for p in command.params:
        if not p.required or p.name == "config":
            continue
        value = _placeholder(p.type, w)
        argv += [value] if isinstance(p, click.Argument) else [p.opts[0], value]
    if "--config" in names:
        argv += ["--config", str(w.config)]
    if "--yes" in names:
        argv.append("--yes")
    return argv


def _placeholder(kind: click.ParamType, w: World) -> str:
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.Path):
        return str(w.config)
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "1"
    return "nope"


@pytest.fixture
def stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The long-running commands' loops return at once, as on a SIGTERM right after start;
    logging is left as the test runner has it."""
    import uvicorn

    import driftd.logs
    from driftd.daemon import app as app_mod
    from driftd.retrain.worker import Worker

    monkeypatch.setattr(app_mod, "run", lambda application: None)
    monkeypatch.setattr(Worker, "run_forever", lambda self, stop: None)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr(driftd.logs, "configure", lambda settings: None)


def assert_iso_times(doc: Any, key: str = "") -> None:
    """No Unix time is left as a number: every time field holds ISO 8601 in UTC."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            assert_iso_times(v, str(k))
    elif isinstance(doc, list):
        for v in doc:
            assert_iso_times(v, key)
    elif is_time_key(key) and doc is not None:
        assert isinstance(doc, str), (key, doc)
        parsed = dt.datetime.fromisoformat(doc)
        assert parsed.utcoffset() == dt.timedelta(0), (key, doc)


@pytest.mark.parametrize("name", sorted(n for n in LEAVES if n not in EXEMPT))
@pytest.mark.usefixtures("stops_at_once")
def test_each_command_prints_one_json_document(name: str, world: World) -> None:
    command = LEAVES[name]
    recipe = RECIPES.get(name)
    argv = recipe[0](world) if recipe else generic(command, world)
    res = CliRunner().invoke(cli, [*name.split(), *argv, "--json"])

    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    doc = json.loads(res.stdout)  # exactly one document, nothing around it
    if recipe is not None:
        assert res.exit_code == recipe[1], (res.stdout, res.stderr)
    if isinstance(doc, dict) and set(doc) == {"error", "exit_code"}:
        assert res.exit_code != 0 and doc["exit_code"] == res.exit_code, res.stderr
        assert doc["error"] and doc["error"] in res.stderr  # the same line, for people
    if name not in RAW_TIMES:
        assert_iso_times(doc)


# Documents that keep their numbers: the effective configuration reads back as a config file,
# whose times (ingest.min_ts) are Unix seconds.
RAW_TIMES = {"config check"}
