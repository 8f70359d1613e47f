"""The simulation commands: ``generate`` writes a synthetic stream with a known drift point;
``demo`` runs the whole closed loop on simulated traffic. (``serve-sim`` lives with the
simulator, in ``driftd.sim.cli``.)"""

from __future__ import annotations

import time
from pathlib import Path

import click

from driftd.cli.errors import Failure
from driftd.cli.options import JSON_HELP, json_option
from driftd.cli.output import console, echo_json, when
from driftd.textsafe import markup_safe as esc


@click.command(short_help="Write a synthetic stream with a known drift point.")
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
@json_option
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
    as_json: bool,
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
    click.echo(f"inputs and concept drift from {when(drift)} on (see truth.json)", err=True)
    if as_json:
        written = {name: str(path) for name, path in paths.items()}
        echo_json({"paths": written, "events": events, "seed": seed, "drift_ts": drift})


@click.command(short_help="Run the whole loop on simulated traffic (files, SQLite, CPU).")
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
@click.option("--json", "as_json", is_flag=True, help=f"The outcome as JSON. {JSON_HELP}")
def demo(out: Path, seed: int, metrics_port: int, as_json: bool) -> None:
    """Drift → alarm → retrain → challenger beats champion (with CIs) → canary → promoted;
    then a challenger with an injected latency regression → canary → rolled back.

    Event time runs as fast as the machine allows; the SQLite registry, the events and a
    metrics snapshot stay in --out to inspect (try `driftd lineage fraud@champion
    --config OUT/driftd.toml`).
    """
    import shutil

    from rich.table import Table

    from driftd.cli.ops import lineage_tree
    from driftd.logs import adopt_library_logs
    from driftd.sim.demo import run_demo

    adopt_library_logs()  # its retrains tune: Optuna's lines go to the log, on stderr
    if out.exists():
        shutil.rmtree(out)
    printer = console()
    if not as_json:
        printer.print(f"[bold]driftd demo[/] in {out}: simulating an hour of traffic …")
    result = run_demo(out, seed=seed, metrics_port=metrics_port)
    if as_json:
        echo_json(result, strict=True)
    else:
        table = Table("event time", "what happened", title="timeline")
        for e in result["timeline"]:
            m, s = divmod(int(e["event_s"]), 60)
            table.add_row(f"{m:>3}:{s:02d}", e["what"])
        printer.print(table)
        speeds = ", ".join(
            f"{k.replace('_', ' ')} {v:.0f} s" for k, v in result["closed_loop_s"].items()
        )
        printer.print(f"closed loop (event time): {speeds}")
        printer.print(lineage_tree(result["lineage"], "champion"))
        for line in result["incidents"]:
            printer.print(f"incident {esc(line)}")
        if result["report"]:
            printer.print(f"incident report (open it in a browser): {esc(result['report'])}")
        printer.print(
            f"{result['wall_s']:.0f} s of wall time; registry, events and metrics.prom in {out}"
        )
    if not result["ok"]:
        raise Failure("the demo did not reach the expected end (see the timeline)")
