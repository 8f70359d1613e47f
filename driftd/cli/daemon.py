"""The daemon's commands: ``run``, ``replay``, ``status``, ``config check`` and ``db upgrade``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftd import __version__
from driftd.cli.errors import failure
from driftd.cli.options import JSON_HELP, config_option, json_option
from driftd.cli.output import echo_json
from driftd.config import Settings, effective_config, load_settings
from driftd.errors import DriftdError

if TYPE_CHECKING:
    from driftd.daemon.app import App

log = logging.getLogger("driftd.cli")


def _settings(config: Path | None) -> Settings:
    return load_settings(config)  # a ConfigError is shown by DriftdGroup (exit 2)


def _daemon_settings(config: Path | None) -> Settings:
    """Settings for a command that runs the pipeline: its detectors' params are checked too,
    before anything is opened (exit 2 naming ``models.NAME.detectors[i].params``)."""
    from driftd.daemon.detector_monitor import check_detectors

    settings = _settings(config)
    check_detectors(settings.models)
    return settings


@click.command()
@config_option(envvar=True)
@json_option
def run(config: Path, as_json: bool) -> None:
    """Run the daemon until SIGTERM or SIGINT.

    Restores the last checkpoint, seeks every source to its saved offsets, then consumes,
    joins and monitors, checkpointing state and offsets together. What it does is logged (on
    stderr); with --json it prints one summary when it stops.
    """
    from driftd.daemon import app as app_mod
    from driftd.logs import configure

    settings = _daemon_settings(config)
    configure(settings.log)
    started = time.time()
    try:
        application = _build(settings, config)
    except DriftdError as exc:
        raise failure(exc) from None
    log.info(
        "driftd starting",
        extra={
            "version": __version__,
            "pipeline": settings.pipeline.name,
            "source": settings.source.kind,
        },
    )
    try:
        app_mod.run(application)
    finally:
        application.close()
    log.info("driftd stopped")
    if as_json:
        summary = {"command": "run", "pipeline": settings.pipeline.name, "version": __version__}
        echo_json({**summary, "started_at": started, "stopped_at": time.time()})


def _build(settings: Settings, config: Path) -> App:
    """The daemon on one registry, whose approval gates become the config's (audited when they
    change); the app owns it from here, and it is released if building fails."""
    from driftd.daemon import app as app_mod
    from driftd.registry.configure import open_registry

    registry = open_registry(settings.registry, settings.registry_url, apply_gates=True)
    try:
        return app_mod.build(settings, config_path=config, model_registry=registry)
    except BaseException:
        registry.engine.dispose()
        raise


@click.command(short_help="Process event files to their end and print a summary.")
@config_option("TOML configuration file (its [source] is replaced by FILES).", exists=True)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False)
)
@click.option("--json", "as_json", is_flag=True, help=f"The summary as JSON. {JSON_HELP}")
@click.option(
    "--dlq",
    type=click.Path(path_type=Path),
    help="Dead-letter file (default: <data_dir>/<first file>.dlq.jsonl).",
)
def replay(config: Path, files: tuple[Path, ...], as_json: bool, dlq: Path | None) -> None:
    """Process event files (JSON lines, optionally gzip) to their end and print a summary.

    Starts from empty state and does not touch the daemon's checkpoints.
    """
    from driftd.daemon.replay import replay_files

    settings = _daemon_settings(config)
    try:
        summary = replay_files(settings, list(files), dlq, progress=not as_json)
    except DriftdError as exc:
        raise failure(exc) from None
    if as_json:
        echo_json(summary, strict=True)
    else:
        from driftd.daemon.replay import print_summary

        print_summary(summary)


@click.command(short_help="Show the counts and offsets held in the checkpoints.")
@config_option(envvar=True)
@json_option
def status(config: Path, as_json: bool) -> None:
    """Show what the daemon's checkpoints hold: counts per model and offsets."""
    from driftd.daemon.replay import checkpoint_status, print_summary

    settings = _settings(config)
    summary = checkpoint_status(settings)
    if as_json:
        echo_json(summary, strict=True)
    else:
        print_summary(summary)


@click.group()
def config() -> None:
    """Inspect configuration."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
def config_check(file: Path, as_json: bool) -> None:
    """Validate FILE (with DRIFTD_* overrides) and print the effective configuration (JSON,
    with or without --json; warnings on stderr)."""
    from driftd.daemon.detector_monitor import threshold_warnings

    settings = _daemon_settings(file)
    # As the configuration takes them: a time stays Unix seconds, so the output reads back.
    echo_json(effective_config(settings), strict=True, times=False)
    for warning in threshold_warnings(settings.models):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{file}: OK", err=True)


@click.group()
def db() -> None:
    """Manage driftd's database schema."""


@db.command("upgrade")
@config_option(
    "TOML configuration file (or DRIFTD_CONFIG): its checkpoint and registry databases.",
    required=False,
    envvar=True,
)
@click.option("--db", "db", metavar="URL", help="Upgrade this database URL instead.")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@json_option
def db_upgrade(config: Path | None, db: str | None, revision: str, as_json: bool) -> None:
    """Apply every pending migration (the checkpoint and registry databases)."""
    from driftd.db import current_revision, make_engine, upgrade

    if db is not None:
        urls = [db]
    elif config is not None:
        settings = _settings(config)
        urls = list(dict.fromkeys([settings.checkpoint.url, settings.registry_url]))
    else:
        raise click.UsageError("say which database: --config FILE or --db URL")
    done = []
    for url in urls:
        engine = make_engine(url)
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
        engine.dispose()
        shown = sa_url(url)
        done.append({"database": shown, "from": before, "to": after})
        click.echo(f"{shown}: {before or 'empty'} → {after}", err=True)
    if as_json:
        echo_json({"upgraded": done})


def sa_url(url: str) -> str:
    """A database URL with its password hidden, for messages."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)
