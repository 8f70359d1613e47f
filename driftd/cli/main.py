"""The ``driftd`` command line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from driftd import __version__
from driftd.cli.errors import DriftdGroup
from driftd.config import LogSettings, Settings, effective_config, load_settings
from driftd.errors import DriftdError

log = logging.getLogger("driftd.cli")


def _settings(config: Path | None) -> Settings:
    return load_settings(config)  # a ConfigError is shown by DriftdGroup (exit 2)


def apply_registry_gates(settings: Settings) -> None:
    """Make the registry's approval gates those of the config (audited when they change)."""
    from driftd.registry.configure import open_registry

    registry = open_registry(settings.registry, settings.registry_url, apply_gates=True)
    registry.engine.dispose()


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


@click.group(
    cls=DriftdGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="driftd")
def cli() -> None:
    """driftd keeps deployed ML models healthy.

    It reads a model server's prediction and label streams (Kafka, or files), joins them,
    watches for drift and quality loss, and exports what it sees to Prometheus.

    \b
    Quick start:
      driftd generate --out demo
      driftd replay --config demo/driftd.toml demo/events.jsonl
    """


@cli.command()
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(path_type=Path),
    envvar="DRIFTD_CONFIG",
    required=True,
    help="TOML configuration file (or DRIFTD_CONFIG).",
)
def run(config: Path) -> None:
    """Run the daemon until SIGTERM or SIGINT.

    Restores the last checkpoint, seeks every source to its saved offsets, then consumes,
    joins and monitors, checkpointing state and offsets together.
    """
    from driftd.daemon import app as app_mod
    from driftd.logs import configure

    settings = _settings(config)
    configure(settings.log)
    try:
        apply_registry_gates(settings)
        application = app_mod.build(settings, config_path=config)
    except DriftdError as exc:
        raise click.ClickException(str(exc)) from None
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


@cli.command(short_help="Process event files to their end and print a summary.")
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(path_type=Path, exists=True),
    required=True,
    help="TOML configuration file (its [source] is replaced by FILES).",
)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False)
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
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

    settings = _settings(config)
    try:
        summary = replay_files(settings, list(files), dlq, progress=not as_json)
    except DriftdError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo_json(summary)
    else:
        from driftd.daemon.replay import print_summary

        print_summary(summary)


@cli.command(short_help="Show the counts and offsets held in the checkpoints.")
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(path_type=Path),
    envvar="DRIFTD_CONFIG",
    required=True,
    help="TOML configuration file (or DRIFTD_CONFIG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(config: Path, as_json: bool) -> None:
    """Show what the daemon's checkpoints hold: counts per model and offsets."""
    from driftd.daemon.replay import checkpoint_status, print_summary

    settings = _settings(config)
    summary = checkpoint_status(settings)
    if as_json:
        _echo_json(summary)
    else:
        print_summary(summary)


@cli.command(short_help="Write a synthetic stream with a known drift point.")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory for events.jsonl, driftd.toml and truth.json.",
)
@click.option(
    "--events",
    "-n",
    default=100_000,
    show_default=True,
    type=click.IntRange(1),
    help="Number of predictions.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--features",
    default=20,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Numeric features per prediction.",
)
@click.option(
    "--drift-at",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of the stream after which inputs and concept drift.",
)
@click.option(
    "--label-delay",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Mean label delay in seconds.",
)
@click.option(
    "--max-label-delay",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.001),
    help="The model's maximum label delay (later labels do not join).",
)
@click.option("--malformed-rate", default=0.002, show_default=True, type=click.FloatRange(0, 1))
@click.option("--duplicate-rate", default=0.01, show_default=True, type=click.FloatRange(0, 1))
@click.option(
    "--versions",
    default="1",
    show_default=True,
    help="Comma-separated model versions that serve traffic (split evenly).",
)
def generate(
    out: Path,
    events: int,
    seed: int,
    features: int,
    drift_at: float,
    label_delay: float,
    max_label_delay: float,
    malformed_rate: float,
    duplicate_rate: float,
    versions: str,
) -> None:
    """Write a synthetic prediction + label stream with a known drift point.

    Writes DIR/events.jsonl, a matching DIR/driftd.toml and DIR/truth.json (the exact counts
    a replay must report). Then: driftd replay --config DIR/driftd.toml DIR/events.jsonl
    """
    from driftd.sim.synth import StreamSpec, write

    spec = StreamSpec(
        events=events,
        seed=seed,
        n_features=features,
        drift_at=drift_at,
        label_delay_mean_s=label_delay,
        max_label_delay_s=max_label_delay,
        malformed_rate=malformed_rate,
        duplicate_rate=duplicate_rate,
        versions=tuple(v.strip() for v in versions.split(",") if v.strip()) or ("1",),
    )
    t0 = time.perf_counter()
    paths = write(spec, out)
    click.echo(
        f"wrote {paths['events']} ({paths['events'].stat().st_size / 1e6:.1f} MB), "
        f"{paths['config']} and {paths['truth']} in {time.perf_counter() - t0:.1f}s",
        err=True,
    )
    drift = spec.start_ts + spec.drift_at * spec.events / spec.rate_per_s
    when = dt.datetime.fromtimestamp(drift, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    click.echo(f"inputs and concept drift from {when} UTC on (see truth.json)", err=True)


@cli.group()
def config() -> None:
    """Inspect configuration."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def config_check(file: Path) -> None:
    """Validate FILE (with DRIFTD_* overrides) and print the effective configuration."""
    from driftd.daemon.detector_monitor import check_detectors

    settings = _settings(file)
    check_detectors(settings.models)
    _echo_json(effective_config(settings))
    click.echo(f"{file}: OK", err=True)


@cli.group()
def db() -> None:
    """Manage driftd's database schema."""


@db.command("upgrade")
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(path_type=Path),
    envvar="DRIFTD_CONFIG",
    help="TOML configuration file (or DRIFTD_CONFIG): its checkpoint and registry databases.",
)
@click.option("--db", "db", metavar="URL", help="Upgrade this database URL instead.")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(config: Path | None, db: str | None, revision: str) -> None:
    """Apply every pending migration (the checkpoint and registry databases)."""
    from driftd.db import current_revision, make_engine, upgrade

    if db is not None:
        urls = [db]
    elif config is not None:
        settings = _settings(config)
        urls = list(dict.fromkeys([settings.checkpoint.url, settings.registry_url]))
    else:
        raise click.UsageError("say which database: --config FILE or --db URL")
    for url in urls:
        engine = make_engine(url)
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
        engine.dispose()
        shown = sa_url(url)
        click.echo(f"{shown}: {before or 'empty'} → {after}", err=True)


def sa_url(url: str) -> str:
    """A database URL with its password hidden, for messages."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


@cli.command(short_help="Run the whole loop on simulated traffic (files, SQLite, CPU).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path(".driftd/demo"),
    show_default=True,
    help="Directory for the config, events, SQLite registry and metrics snapshot.",
)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--metrics-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Serve /metrics while it runs (0: any free port).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def demo(out: Path, seed: int, metrics_port: int, as_json: bool) -> None:
    """Drift → alarm → retrain → challenger beats champion (with CIs) → canary → promoted;
    then a challenger with an injected latency regression → canary → rolled back.

    Event time runs as fast as the machine allows; the SQLite registry, the events and a
    metrics snapshot stay in --out to inspect (try `driftd lineage fraud@champion
    --config OUT/driftd.toml`).
    """
    import shutil

    from rich.console import Console
    from rich.table import Table

    from driftd.cli.ops import lineage_tree
    from driftd.sim.demo import run_demo

    if out.exists():
        shutil.rmtree(out)
    console = Console()
    if not as_json:
        console.print(f"[bold]driftd demo[/] in {out}: simulating an hour of traffic …")
    result = run_demo(out, seed=seed, metrics_port=metrics_port)
    if as_json:
        _echo_json(result)
    else:
        table = Table("event time", "what happened", title="timeline")
        for e in result["timeline"]:
            m, s = divmod(int(e["event_s"]), 60)
            table.add_row(f"{m:>3}:{s:02d}", e["what"])
        console.print(table)
        speeds = ", ".join(
            f"{k.replace('_', ' ')} {v:.0f} s" for k, v in result["closed_loop_s"].items()
        )
        console.print(f"closed loop (event time): {speeds}")
        console.print(lineage_tree(result["lineage"], "champion"))
        console.print(
            f"{result['wall_s']:.0f} s of wall time; registry, events and metrics.prom in {out}"
        )
    if not result["ok"]:
        raise click.ClickException("the demo did not reach the expected end (see the timeline)")


def _register_subcommands() -> None:
    from driftd.cli import ops as cli_ops
    from driftd.cli import registry as cli_registry
    from driftd.cli import retrain as cli_retrain

    cli.add_command(cli_registry.registry)
    cli.add_command(cli_ops.lineage)
    cli.add_command(cli_ops.audit)
    cli.add_command(cli_ops.token)
    cli.add_command(cli_ops.outbox)
    cli.add_command(cli_ops.api)
    cli.add_command(cli_ops.rollout)
    cli.add_command(cli_retrain.retrain)
    from driftd.sim.cli import serve_sim

    cli.add_command(serve_sim)


_register_subcommands()


def main() -> None:
    """Entry point of the console script."""
    if not logging.getLogger().handlers:
        from driftd.logs import configure

        configure(LogSettings(level="WARNING"))
    try:
        cli.main(prog_name="driftd")
    except KeyboardInterrupt:
        sys.exit(130)
