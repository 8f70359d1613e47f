"""The registry's command line: ``driftd registry …``, ``lineage``, ``audit``, ``token``.

These commands talk to the registry database directly, as an operator with database access:
the actor recorded in the audit log is ``--actor`` (default: the login name). Roles and tokens
guard the HTTP API, which is what services and people without database access use.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftd.cli.access import opened_registry, registry_from_options
from driftd.cli.errors import failure
from driftd.cli.options import TIME, actor_option, config_option, db_options, json_option
from driftd.cli.output import cells, clip, console, echo_json, say, when
from driftd.config import load_settings
from driftd.errors import DriftdError
from driftd.textsafe import markup_safe

if TYPE_CHECKING:
    from driftd.registry.artifacts import ArtifactPolicy


@click.group()
def registry() -> None:
    """Models, versions, stages and aliases: list, register, promote, approve, roll back."""


@registry.command("ls")
@db_options
@json_option
def ls(config: Path | None, db: str | None, as_json: bool) -> None:
    """List models with their latest version and aliases."""
    from rich.table import Table

    with registry_from_options(config, db) as reg:
        models = reg.list_models()
    if as_json:
        echo_json([m.to_dict() for m in models])
        return
    table = Table("model", "latest", "aliases", "created")
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))
        table.add_row(*cells(m.name, m.latest_version or "-", aliases, when(m.created_at)))
    console().print(table)


@registry.command("show")
@click.argument("ref")
@db_options
@json_option
def show(ref: str, config: Path | None, db: str | None, as_json: bool) -> None:
    """Show a model (NAME) or one version (NAME/VERSION, NAME@ALIAS, models:/…)."""
    from rich.table import Table

    body = ref.removeprefix("models:/")
    with registry_from_options(config, db) as reg:
        if "/" in body or "@" in body:
            v = reg.resolve(ref)
            if as_json:
                echo_json(v.to_dict())
                return
            table = Table("field", "value", title=markup_safe(v.uri))
            for key, value in v.to_dict().items():
                table.add_row(
                    *cells(key, json.dumps(value) if isinstance(value, dict | list) else value)
                )
            console().print(table)
            return
        model = reg.get_model(body)
        versions = reg.list_versions(body)
    if as_json:
        echo_json({"model": model.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    table = Table(
        "version", "stage", "aliases", "created", "by", "artifact", title=markup_safe(model.name)
    )
    for v in versions:
        table.add_row(
            *cells(
                v.version,
                v.stage,
                ", ".join(v.aliases),
                when(v.created_at),
                v.created_by,
                f"{v.artifact_uri} ({clip(v.artifact_sha256, 9)})",
            )
        )
    console().print(table)


def _artifact(artifact: str, sha256: str | None, policy: ArtifactPolicy) -> tuple[str, str, int]:
    """URI, SHA-256 and size of the artifact: hashed here when it is a local file that the
    registry's artifact policy allows (checked before the file is read)."""
    path = Path(artifact.removeprefix("file://"))
    if path.is_file():
        policy.check(path.resolve().as_uri())
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if sha256 is not None and sha256 != h.hexdigest():
            raise click.BadParameter(
                f"{path} has SHA-256 {h.hexdigest()}, not {sha256}", param_hint="--sha256"
            )
        return path.resolve().as_uri(), h.hexdigest(), path.stat().st_size
    if sha256 is None:
        raise click.BadParameter(
            f"{artifact} is not a local file; give its --sha256 and --size", param_hint="--sha256"
        )
    return artifact, sha256, -1


@registry.command("register")
@click.argument("model")
@click.option("--artifact", required=True, help="A local file (hashed here) or a URI.")
@click.option("--sha256", help="The artifact's SHA-256 (required for a remote URI).")
@click.option("--size", type=click.IntRange(min=0), help="Artifact size in bytes (remote URI).")
@click.option("--framework", default="torch", show_default=True)
@click.option(
    "--signature",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="JSON file: the input feature schema and output type.",
)
@click.option("--run-id", help="The training run that produced it.")
@click.option("--parent", type=click.IntRange(min=1), help="The version it was derived from.")
@click.option("--stage", default="development", show_default=True)
@click.option("--alias", "aliases", multiple=True, help="Point this alias at it (repeatable).")
@click.option("--description", default="")
@click.option("--request-id", help="Idempotency key: repeating it does not register twice.")
@db_options
@actor_option
@json_option
def register(
    model: str,
    artifact: str,
    sha256: str | None,
    size: int | None,
    framework: str,
    signature: Path | None,
    run_id: str | None,
    parent: int | None,
    stage: str,
    aliases: tuple[str, ...],
    description: str,
    request_id: str | None,
    config: Path | None,
    db: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Register a new version of MODEL."""
    sig = json.loads(signature.read_text()) if signature is not None else {}
    with registry_from_options(config, db) as reg:
        uri, digest, found_size = _artifact(artifact, sha256, reg.artifacts)
        if found_size < 0:
            if size is None:
                raise click.BadParameter("give --size for a remote artifact", param_hint="--size")
            found_size = size
        v = reg.register_version(
            model,
            uri,
            digest,
            found_size,
            actor,
            framework=framework,
            signature=sig,
            run_id=run_id,
            parent_version=parent,
            description=description,
            stage=stage,
            aliases=aliases,
            request_id=request_id,
        )
    if as_json:
        echo_json(v.to_dict())
    else:
        say(f"registered {v.uri} ({v.stage})")


@registry.command("promote")
@click.argument("ref")
@click.option(
    "--to", "stage", required=True, help="Target stage, e.g. staging, canary, production."
)
@click.option("--reason", default="")
@click.option("--expect", "expected", help="Refuse unless the version is in this stage now.")
@click.option("--request-id", help="Idempotency key.")
@db_options
@actor_option
@json_option
def promote(
    ref: str,
    stage: str,
    reason: str,
    expected: str | None,
    request_id: str | None,
    config: Path | None,
    db: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Move a version (NAME/VERSION or NAME@ALIAS) to another stage; its gate applies (exit 3
    when it refuses)."""
    with registry_from_options(config, db) as reg:
        v = reg.resolve(ref)
        v = reg.promote(
            v.model, v.version, stage, actor, reason, expected_stage=expected, request_id=request_id
        )
    if as_json:
        echo_json(v.to_dict())
        return
    say(f"{v.uri} is now in {v.stage}" + (f" ({', '.join(v.aliases)})" if v.aliases else ""))


@registry.command("approve")
@click.argument("ref")
@click.option("--for", "stage", required=True, help="The stage this approval is for.")
@click.option(
    "--role", default="approver", show_default=True, type=click.Choice(["approver", "admin"])
)
@click.option("--comment", default="")
@click.option("--request-id", help="Idempotency key.")
@db_options
@actor_option
@json_option
def approve(
    ref: str,
    stage: str,
    role: str,
    comment: str,
    request_id: str | None,
    config: Path | None,
    db: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Approve a version for a stage (you cannot approve your own version: exit 3)."""
    with registry_from_options(config, db) as reg:
        v = reg.resolve(ref)
        reg.approve(v.model, v.version, stage, actor, role, comment, request_id=request_id)
    if as_json:
        approval = {"model": v.model, "version": v.version, "uri": v.uri, "stage": stage}
        echo_json({**approval, "approver": actor, "role": role, "comment": comment})
        return
    say(f"{actor} approved {v.uri} for {stage}")


@registry.command("rollback")
@click.argument("model")
@click.option("--reason", required=True, help="Why: recorded in the audit log and the event.")
@click.option("--version", type=click.IntRange(min=1), help="Default: the canary, else champion.")
@click.option("--request-id", help="Idempotency key.")
@db_options
@actor_option
@json_option
def rollback(
    model: str,
    reason: str,
    version: int | None,
    request_id: str | None,
    config: Path | None,
    db: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Take MODEL's canary (or champion) out of service; no gate applies."""
    with registry_from_options(config, db) as reg:
        v = reg.rollback(model, actor, reason, version=version, request_id=request_id)
    if as_json:
        echo_json({"champion": v.to_dict()})
        return
    say(f"rolled back; {v.uri} is serving as champion")


@registry.command("alias")
@click.argument("ref")
@click.argument("alias")
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@db_options
@actor_option
@json_option
def alias(
    ref: str,
    alias: str,
    delete: bool,
    config: Path | None,
    db: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Point ALIAS (e.g. challenger) at a version, or --delete it (REF is then the model)."""
    with registry_from_options(config, db) as reg:
        if delete:
            model = ref.removeprefix("models:/")
            reg.delete_alias(model, alias, actor)
            if as_json:
                echo_json({"model": model, "alias": alias, "version": None})
            else:
                say(f"deleted {ref}@{alias}")
            return
        v = reg.resolve(ref)
        reg.set_alias(v.model, alias, v.version, actor)
    if as_json:
        echo_json({"model": v.model, "alias": alias, "version": v.version})
    else:
        say(f"{v.model}@{alias} → {v.version}")


@registry.command("history")
@click.argument("model")
@click.option("--version", type=click.IntRange(min=1), help="Only this version.")
@click.option("--alias", "at_alias", default="champion", show_default=True)
@click.option(
    "--at", "at", type=TIME, help="A time (ISO 8601 or Unix seconds): the version ALIAS held then."
)
@db_options
@json_option
def history(
    model: str,
    version: int | None,
    at_alias: str,
    at: float | None,
    config: Path | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Every stage change and alias move of MODEL, or which version held an alias --at T."""
    from rich.table import Table

    with registry_from_options(config, db) as reg:
        if at is not None:
            held = reg.alias_at(model, at_alias, at)
            if as_json:
                echo_json({"model": model, "alias": at_alias, "at": at, "version": held})
            else:
                say(f"{model}@{at_alias} at {when(at)}: {held if held else 'none'}")
            return
        entries = reg.history(model, version)
    if as_json:
        echo_json([e.to_dict() for e in entries])
        return
    table = Table(
        "from", "to", "kind", "name", "version", "actor", "reason", title=markup_safe(model)
    )
    for e in entries:
        table.add_row(
            *cells(
                when(e.valid_from), when(e.valid_to), e.kind, e.name, e.version, e.actor, e.reason
            )
        )
    console().print(table)


@registry.command("gates")
@config_option("TOML file.")
@actor_option
@json_option
def gates(config: Path, actor: str, as_json: bool) -> None:
    """Make the database's approval gates those of the config's [registry.gates]."""
    try:
        settings = load_settings(config)
    except DriftdError as exc:
        raise failure(exc) from None
    from driftd.registry.configure import gates_from

    with opened_registry(settings.registry, settings.registry_url) as reg:
        reg.set_gates(gates_from(settings.registry), actor)
        current = reg.gates()
    if as_json:
        echo_json(
            {
                stage.value: {
                    "approvals": g.approvals,
                    "role": g.role.value,
                    "require_evaluation": g.require_evaluation,
                }
                for stage, g in sorted(current.items())
            }
        )
        return
    for stage, g in sorted(current.items()):
        click.echo(
            f"{stage.value}: {g.approvals} approval(s) from {g.role.value}"
            + (", a passed evaluation" if g.require_evaluation else "")
        )
    if not current:
        click.echo("no gates: every legal transition is allowed")
