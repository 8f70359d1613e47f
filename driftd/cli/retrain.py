"""``driftd retrain``: retrain a model now, queue a job, list jobs, run a worker, reproduce a run.

``driftd retrain MODEL`` (the default subcommand, ``run``) retrains in this process with rich
progress for epochs and trials; ``submit`` queues the same work for the daemon's worker.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from driftd.cli import options
from driftd.cli.errors import Failure, failure
from driftd.cli.exitcodes import Exit
from driftd.cli.output import cells, clip, console, echo_json, say, when
from driftd.config import Settings, load_settings
from driftd.errors import DriftdError
from driftd.retrain.abc import JobState
from driftd.textsafe import markup_safe, safe_lines

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

    from driftd.registry.registry import Registry
    from driftd.retrain import service
    from driftd.retrain.snapshot import Window

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def parse_window(text: str) -> Window:
    """``rows:N``, ``last:30d`` (s/m/h/d), ``since:TIME`` (ISO 8601 or Unix seconds) or
    ``range:START:END`` (Unix seconds)."""
    from driftd.retrain.snapshot import LastN, SinceAlarm, TimeRange

    kind, _, rest = text.partition(":")
    try:
        if kind == "rows":
            return LastN(int(rest))
        if kind == "last":
            m = _DURATION.match(rest)
            if not m:
                raise ValueError(rest)
            import time

            now = time.time()
            return TimeRange(now - float(m.group(1)) * _UNITS[m.group(2)], now)
        if kind == "since":
            return SinceAlarm(options.parse_time(rest))
        if kind == "range":
            start, _, end = rest.partition(":")
            return TimeRange(float(start), float(end))
    except ValueError:
        pass
    raise click.BadParameter(
        f"{text!r}: expected rows:N, last:DURATION (e.g. last:7d), since:TIME (ISO 8601 or "
        "Unix seconds) or range:START:END",
        param_hint="--window",
    )


def _settings(config: Path) -> Settings:
    try:
        return load_settings(config)
    except DriftdError as exc:
        raise failure(exc) from None  # exit 2, like every bad config


def _open(settings: Settings) -> Registry:
    from driftd.registry.configure import open_registry

    try:
        return open_registry(settings.registry, settings.registry_url, apply_gates=False)
    except DriftdError as exc:
        raise failure(exc) from None


config_option = options.config_option(envvar=True, exists=True, dir_okay=False)


@click.group(cls=DefaultGroup)
def retrain() -> None:
    """Retrain a model: now (driftd retrain MODEL), queued (submit), and its jobs and runs."""


@retrain.command("run")
@click.argument("model")
@config_option
@click.option("--window", help="rows:N, last:7d, since:UNIX_TS or range:START:END.")
@click.option("--trials", type=click.IntRange(min=0), help="Optuna trials (0: train once).")
@click.option("--json", "as_json", is_flag=True, help=f"The outcome as JSON. {options.JSON_HELP}")
def run(model: str, config: Path, window: str | None, trials: int | None, as_json: bool) -> None:
    """Retrain MODEL now: snapshot, train or tune, evaluate against the champion, register.
    Exit 3 when the candidate is refused (registered, but not promoted)."""
    from driftd.lineage import lineage_from_settings
    from driftd.logs import adopt_library_logs
    from driftd.retrain import service

    settings = _settings(config)
    if model not in settings.models:
        raise click.BadParameter(
            f"model {model!r} is not configured; known: {', '.join(sorted(settings.models))}",
            param_hint="MODEL",
        )
    bar, progress = _progress(settings, model, trials, quiet=as_json)
    adopt_library_logs()  # Optuna's lines go to the log on stderr, not among the output
    registry = _open(settings)
    try:
        with bar:
            outcome = service.retrain_model(
                model,
                settings.models[model],
                settings.retrain,
                registry,
                storage_url=settings.registry_url,
                window=parse_window(window) if window else None,
                trials=trials,
                progress=progress,
                lineage=lineage_from_settings(settings.lineage),
            )
    except DriftdError as exc:
        raise failure(exc) from None
    finally:
        registry.engine.dispose()
    if as_json:
        echo_json(outcome.to_dict())
    else:
        _print_outcome(model, outcome)
    if not outcome.promoted:
        raise SystemExit(int(Exit.REFUSED))


def _progress(
    settings: Settings, model: str, trials: int | None, quiet: bool
) -> tuple[RichProgress, service.Progress]:
    """A rich bar of epochs and trials on stderr (off when ``quiet`` or not on a terminal),
    and the retrain progress callbacks that drive it."""
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    from driftd.retrain import service

    rs = settings.models[model].retrain
    epochs = int((rs.params if rs else {}).get("epochs", 10))
    n_trials = trials if trials is not None else (rs.tuning.trials if rs else 0)
    console = Console(stderr=True)
    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    )
    ep = bar.add_task("epochs", total=epochs, info="")
    tr = bar.add_task("trials", total=max(n_trials, 1), info="", visible=n_trials > 0)

    def epoch(i: int, metrics: dict[str, float]) -> None:
        loss = metrics.get("loss")
        bar.update(ep, completed=i, info="" if loss is None else f"val loss {loss:.4f}")

    def trial(row: Any) -> None:
        value = "-" if row.value is None else f"{row.value:.4f}"
        bar.update(tr, advance=1, info=markup_safe(f"#{row.number} {row.state} {value}"))

    progress = service.Progress(
        phase=lambda msg: bar.console.log(markup_safe(msg)), epoch=epoch, trial=trial
    )
    return bar, progress


def _print_outcome(model: str, outcome: service.RetrainOutcome) -> None:
    """The registered version, the gate's verdict and its reasons, one line each."""
    ev = outcome.evaluation
    verdict = "promoted to staging as challenger" if outcome.promoted else "refused"
    say(f"models:/{model}/{outcome.version}: {verdict} (run {outcome.run_id})")
    for reason in ev.get("reasons", []):
        say(f"  - {reason}")
    if "primary" in ev:
        say(f"  primary: {json.dumps(ev['primary'], default=str)}")


@retrain.command("submit")
@click.argument("model")
@config_option
@click.option("--request-id", help="Idempotency key: the same key queues one job.")
@options.json_option
def submit(model: str, config: Path, request_id: str | None, as_json: bool) -> None:
    """Queue a retrain of MODEL for the daemon's worker (or `driftd retrain worker`)."""
    import dataclasses

    from driftd.retrain.jobs import JobQueue
    from driftd.retrain.triggers import Triggers, retrain_sections

    settings = _settings(config)
    registry = _open(settings)
    try:
        triggers = Triggers(retrain_sections(settings.models), config, JobQueue(registry.engine))
        try:
            sub = triggers.manual(model, request_id or uuid.uuid4().hex)
        except KeyError as exc:
            raise Failure(str(exc.args[0])) from None
    finally:
        registry.engine.dispose()
    if sub.job is None:
        raise Failure(f"not queued: {sub.reason}")
    if as_json:
        echo_json(
            {"job": dataclasses.asdict(sub.job), "created": sub.created, "reason": sub.reason}
        )
        return
    created = "queued" if sub.created else "already exists"
    say(f"job {sub.job.id} {created} ({sub.reason})")


@retrain.command("jobs")
@config_option
@click.option("--model", help="Only this model.")
@click.option("--state", type=click.Choice([state.value for state in JobState]))
@options.json_option
def jobs(config: Path, model: str | None, state: str | None, as_json: bool) -> None:
    """List retrain jobs, newest first."""
    import dataclasses

    from rich.table import Table

    from driftd.retrain.jobs import JobQueue

    settings = _settings(config)
    registry = _open(settings)
    try:
        rows = JobQueue(registry.engine).list(model=model, state=state)
    finally:
        registry.engine.dispose()
    if as_json:
        echo_json([dataclasses.asdict(j) for j in rows])
        return
    table = Table("job", "model", "state", "attempts", "created", "trigger", "error / result")
    for j in rows:
        created = when(j.created_at)
        detail = j.error or (clip(json.dumps(j.result), 80) if j.result else "")
        row = (clip(j.id, 13), j.model, j.state, f"{j.attempts}/{j.max_attempts}", created)
        table.add_row(*cells(*row, j.trigger.get("kind"), detail))
    console().print(table)


@retrain.command("worker")
@config_option
@options.json_option
def worker(config: Path, as_json: bool) -> None:
    """Run queued retrain jobs until SIGTERM (the daemon runs one too unless retrain.worker
    is false). Each job is logged (picked, started, finished or failed, with its id and model)
    on stderr; with --json it prints one summary when it stops."""
    import signal
    import threading
    import time

    from driftd.logs import configure
    from driftd.retrain.triggers import make_worker, retrain_sections

    settings = _settings(config)
    configure(settings.log)
    registry = _open(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.time()
    try:
        sections = retrain_sections(settings.models)
        runner = make_worker(settings.retrain, sections, registry)
        runner.run_forever(stop)
    finally:
        registry.engine.dispose()
    if as_json:
        summary = {"command": "retrain worker", "worker": runner.worker_id}
        echo_json({**summary, "started_at": started, "stopped_at": time.time()})


def recorded_run(registry: Registry, run_id: str) -> tuple[dict[str, Any], Path]:
    """The run as ``repro.reproduce`` wants it, and its snapshot directory."""
    run = registry.get_run(run_id)
    if run.dataset_id is None:
        raise Failure(f"run {run_id} recorded no dataset; it cannot be reproduced")
    dataset = registry.get_dataset(run.dataset_id)
    tags = run.tags
    missing = [k for k in ("entry_point", "task", "artifact_sha256") if k not in tags]
    if missing:
        raise Failure(f"run {run_id} lacks {', '.join(missing)}; was it finished?")
    record = {
        "entry_point": tags["entry_point"],
        "task": tags["task"],
        "params": run.params,
        "seed": run.seeds.get("seed", 0),
        "deterministic": bool(tags.get("deterministic", False)),
        "device": tags.get("device_used", "cpu"),
        "dataset_sha256": dataset.sha256,
        "code": run.code,
        "environment": run.environment,
        "artifact_sha256": tags["artifact_sha256"],
        "metrics": {k: v for k, v in run.metrics.items() if isinstance(v, int | float)},
        "epochs_run": tags.get("epochs_run"),
    }
    return record, Path(dataset.uri.removeprefix("file://"))


@retrain.command("reproduce")
@click.argument("run_id")
@config_option
@click.option("--tolerance", default=0.0, show_default=True, help="Allowed metric difference.")
@options.json_option
def reproduce(run_id: str, config: Path, tolerance: float, as_json: bool) -> None:
    """Rerun RUN_ID from its recorded metadata alone; say whether artifact and metrics match
    and, when not, what changed (dataset, code, params, environment). Exit 5 (verification
    failed) on a mismatch or a snapshot whose content changed."""
    from driftd.retrain.repro import reproduce as rerun_and_compare

    settings = _settings(config)
    registry = _open(settings)
    try:
        record, snapshot = recorded_run(registry, run_id)
    except DriftdError as exc:
        raise failure(exc) from None
    finally:
        registry.engine.dispose()
    from driftd.retrain.snapshot import SnapshotIntegrityError

    try:
        _, report = rerun_and_compare(record, snapshot, tolerance=tolerance)
    except SnapshotIntegrityError as exc:
        # The snapshot on disk no longer holds the content the run was trained on.
        if as_json:
            changed = {"ok": False, "artifact_match": False, "metrics_match": False}
            echo_json({**changed, "differences": [f"dataset changed: {exc}"]})
        else:
            click.echo("NOT reproduced")
            say(f"dataset changed: {exc}")
        raise SystemExit(int(Exit.VERIFY_FAILED)) from None
    if as_json:
        echo_json(
            {
                "ok": report.ok,
                "artifact_match": report.artifact_match,
                "metrics_match": report.metrics_match,
                "differences": [d.message for d in report.differences],
            },
            strict=True,
        )
    else:
        click.echo(safe_lines(report.summary()))
    if not report.ok:
        raise SystemExit(int(Exit.VERIFY_FAILED))
