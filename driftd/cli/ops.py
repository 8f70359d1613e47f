"""Operations on the registry from the command line: ``lineage``, ``audit verify|log``,
``token create|list|revoke``, ``outbox run|status`` and ``api serve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from driftd.cli.access import opened_registry, registry_from_options, registry_settings
from driftd.cli.exitcodes import Exit
from driftd.cli.options import actor_option, config_option, db_options, json_option
from driftd.cli.output import clip, console, echo_json, say, when
from driftd.config import RegistrySettings
from driftd.textsafe import markup_safe as esc

if TYPE_CHECKING:
    from rich.tree import Tree

    from driftd.registry.audit import Witness
    from driftd.registry.outbox import Dispatcher
    from driftd.registry.registry import Registry


def lineage_tree(node: dict[str, Any], label: str) -> Tree:
    """A version's lineage as a rich tree; every stored string in it escaped."""
    from rich.tree import Tree

    v = node["version"]
    # Every stored string goes through esc(): escaped controls, and no rich markup.
    head = esc(f"{node['uri']}  stage={v['stage']}  aliases={v['aliases']}")
    root = Tree(f"[bold]{esc(label)}[/] {head}")
    root.add(esc(f"artifact {v['artifact_uri']}  sha256={clip(v['artifact_sha256'], 13)}"))
    run = node.get("run")
    if run:
        r = root.add(esc(f"run {run['id']}  status={run['status']}"))
        for key in ("params", "metrics", "seeds", "code", "environment"):
            r.add(esc(f"{key}: {clip(json.dumps(run[key], default=str), 200)}"))
    ds = node.get("dataset")
    if ds:
        root.add(
            esc(
                f"dataset {ds['short']}  rows={ds['row_count']}  "
                f"window={when(ds['window_start'])} → {when(ds['window_end'])}  "
                f"offsets={clip(json.dumps(ds['source_offsets']), 120)}"
            )
        )
    if node.get("trigger"):
        root.add(esc(f"trigger {json.dumps(node['trigger'])}"))
    approvals = root.add(f"approvals ({len(node['approvals'])})")
    for a in node["approvals"]:
        approvals.add(
            esc(f"{a['approver']} ({a['role']}) for {a['stage']} at {when(a['created_at'])}")
        )
    hist = root.add("history")
    for h in node["history"]:
        hist.add(
            esc(f"{when(h['valid_from'])} {h['kind']} {h['name']} by {h['actor']} {h['reason']}")
        )
    parent = node.get("parent")
    if parent and "version" in parent:
        root.add(lineage_tree(parent, "parent"))
    elif parent:
        root.add(esc(f"parent {parent['uri']} (not expanded)"))
    return root


@click.command("lineage")
@click.argument("ref")
@click.option("--depth", default=5, show_default=True, type=click.IntRange(0, 100))
@db_options
@json_option
def lineage(ref: str, depth: int, config: Path | None, db: str | None, as_json: bool) -> None:
    """Print REF's lineage: version → run → dataset → trigger → parent, approvals, history."""
    with registry_from_options(config, db) as reg:
        tree = reg.lineage(ref, depth)
    if as_json:
        echo_json(tree)
    else:
        console().print(lineage_tree(tree, "version"))


@click.group()
def audit() -> None:
    """The hash-chained audit log: verify it, read it."""


def _witness(ctx: click.Context, param: click.Parameter, value: str | None) -> Witness | None:
    from driftd.registry.audit import Witness

    if value is None:
        return None
    try:
        return Witness.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@audit.command("verify")
@click.option(
    "--expect-head",
    metavar="SEQ:HASH",
    callback=_witness,
    help="A head a witness saw (an audit.head event's 'witness'): fail unless the log still "
    "holds record SEQ with that hash.",
)
@db_options
@json_option
def audit_verify(
    expect_head: Witness | None, config: Path | None, db: str | None, as_json: bool
) -> None:
    """Walk the audit chain; name the first altered, removed or inserted record, a moved head
    row, or a witnessed record that is gone (exit 5)."""
    with registry_from_options(config, db) as reg:
        result = reg.verify_audit(expect_head=expect_head)
    if as_json:
        echo_json(result.to_dict())
    elif result.ok:
        seen = f"; witness {expect_head.seq} matches" if expect_head is not None else ""
        click.echo(f"audit log OK: {result.records} records, head {result.head_seq}{seen}")
    else:
        say(f"audit log BROKEN: {result.problem}", err=True)
    if not result.ok:
        raise SystemExit(int(Exit.VERIFY_FAILED))


@audit.command("log")
@click.option("--after", default=0, type=click.IntRange(min=0), help="Records after this seq.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--subject", help="Only this subject, e.g. fraud/3 or fraud@champion.")
@db_options
@json_option
def audit_log(
    after: int, limit: int, subject: str | None, config: Path | None, db: str | None, as_json: bool
) -> None:
    """Print audit records in order."""
    import dataclasses

    with registry_from_options(config, db) as reg:
        records = reg.audit_log(after, limit, subject)
    if as_json:
        echo_json([dataclasses.asdict(r) for r in records])
        return
    for r in records:
        say(
            f"{r.seq:>8} {when(r.ts)} {r.actor:<12} {r.action:<18} {r.subject:<24} "
            f"{r.old} → {r.new} {r.reason}"
        )


@click.group()
def token() -> None:
    """API tokens for the HTTP API (roles: viewer, approver, admin)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "approver", "admin"]), help="Its role."
)
@db_options
@actor_option
@json_option
def token_create(
    name: str, role: str, config: Path | None, db: str | None, actor: str, as_json: bool
) -> None:
    """Create a token and print it once; only its hash is stored."""
    from driftd.registry.tokens import create_token

    with registry_from_options(config, db) as reg:
        secret = create_token(reg, name, role, actor)
    if as_json:
        echo_json({"name": name, "role": role, "token": secret})
    else:
        click.echo(secret)
    click.echo("store it now: it cannot be shown again", err=True)


@token.command("list")
@db_options
@json_option
def token_list(config: Path | None, db: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    from driftd.registry.tokens import list_tokens

    with registry_from_options(config, db) as reg:
        rows = list_tokens(reg)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        state = "revoked" if r["revoked"] else "active"
        say(f"{r['id']}  {r['name']:<20} {r['role']:<9} {state}")


@token.command("revoke")
@click.argument("token_id")
@db_options
@actor_option
@json_option
def token_revoke(
    token_id: str, config: Path | None, db: str | None, actor: str, as_json: bool
) -> None:
    """Revoke a token by id."""
    from driftd.registry.tokens import revoke_token

    with registry_from_options(config, db) as reg:
        revoke_token(reg, token_id, actor)
    if as_json:
        echo_json({"id": token_id, "revoked": True})
    else:
        say(f"revoked {token_id}")


@click.group()
def outbox() -> None:
    """Deliver registry events to webhooks and the Kafka control topic."""


def _dispatcher(
    reg: Registry, settings: RegistrySettings, witness_every_s: float | None
) -> Dispatcher:
    from driftd.registry.outbox import KafkaControl, dispatcher_from_settings

    kafka = None
    if settings.control_topic:
        kafka = KafkaControl(settings.control_bootstrap_servers, settings.control_topic)
    return dispatcher_from_settings(
        reg.engine, settings.webhooks, kafka, witness_every_s=witness_every_s
    )


@outbox.command("run")
@config_option("TOML file.")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.01, 60))
@click.option(
    "--witness-every",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between audit.head events (the audit head, for witnesses; 0: none). "
    "Not with --once.",
)
@json_option
def outbox_run(config: Path, once: bool, poll: float, witness_every: float, as_json: bool) -> None:
    """Deliver pending events until SIGTERM (or once with --once); publish the audit head as an
    audit.head event every --witness-every seconds when it moved. With --json it prints one
    summary when it ends (deliveries are logged on stderr as they happen)."""
    import signal
    import threading
    import time

    settings, url = registry_settings(config, None)
    started = time.time()
    with opened_registry(settings, url) as reg:
        dispatcher = _dispatcher(reg, settings, witness_every or None)
        if once:
            delivered = dispatcher.run_once()
            click.echo(f"delivered {delivered} event(s)", err=True)
            if as_json:
                echo_json({"command": "outbox run", "once": True, "delivered": delivered})
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        dispatcher.run(stop, poll)
    if as_json:
        summary = {"command": "outbox run", "once": False, "started_at": started}
        echo_json({**summary, "stopped_at": time.time()})


@outbox.command("status")
@db_options
@json_option
def outbox_status(config: Path | None, db: str | None, as_json: bool) -> None:
    """Where each delivery target stands: last delivered id, pending, attempts, dead letters."""
    from driftd.registry.outbox import status

    settings, url = registry_settings(config, db)
    names = [w.name for w in settings.webhooks] if config is not None else []
    with opened_registry(settings, url) as reg:
        rows = status(reg.engine, names)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        say(
            f"{r['target']:<16} last={r['last_id']} pending={r['pending']} "
            f"attempts={r['attempts']} dead={r['dead']} {r['last_error']}"
        )


@click.group()
def api() -> None:
    """The registry's HTTP API."""


@api.command("serve")
@config_option("TOML file.")
@click.option("--host", help="Listen address (default: registry.api_host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: registry.api_port).")
@json_option
def api_serve(config: Path, host: str | None, port: int | None, as_json: bool) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) until SIGTERM; gates come from the config.
    With --json it prints one summary when it stops (uvicorn logs on stderr)."""
    import time

    import uvicorn

    from driftd.api import create_app
    from driftd.config import load_settings

    settings, url = registry_settings(config, None)
    from driftd.retrain.store import LabeledStore

    full = load_settings(config) if config is not None else None
    incidents = full.incidents if full is not None else None
    labeled = LabeledStore(full.retrain.store_dir) if full is not None else None
    started = time.time()
    listen_host = host or settings.api_host
    listen_port = settings.api_port if port is None else port
    with opened_registry(settings, url, apply_gates=True) as reg:
        uvicorn.run(
            create_app(reg, settings.api_max_body_bytes, incidents, labeled),
            host=listen_host,
            port=listen_port,
            log_level="warning",
        )
    if as_json:
        echo_json(
            {
                "command": "api serve",
                "host": listen_host,
                "port": listen_port,
                "started_at": started,
                "stopped_at": time.time(),
            }
        )
