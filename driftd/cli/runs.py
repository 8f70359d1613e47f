"""``driftd runs ls|show|compare|gc``: training runs as a list to filter and sort, one run with
its metric curves (sparklines, or a series as a table), runs side by side with the differences
highlighted, and artifact retention (keep the best N runs' files per model)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from driftd.cli.access import registry_from_options
from driftd.cli.errors import Failure, failure
from driftd.cli.options import actor_option, config_option, db_options, json_option
from driftd.cli.output import cells, clip, console, echo_json, on_terminal, say, when
from driftd.errors import DriftdError

if TYPE_CHECKING:
    from rich.table import Table

    from driftd.registry.records import RunInfo
    from driftd.registry.run_query import Comparison, RunFilter

STATUSES = ("running", "finished", "failed", "killed")


@click.group()
def runs() -> None:
    """Training runs: list, filter and sort them, show one, compare several, clean artifacts."""


def _filter(
    model: str | None, status: str | None, trigger: str | None, tags: tuple[str, ...],
    metrics: tuple[str, ...],
) -> RunFilter:  # fmt: skip
    """The filter the options describe; a malformed ``--tag`` or ``--metric`` is a usage error."""
    from driftd.registry import InvalidRequest
    from driftd.registry.run_query import RunFilter, parse_condition, parse_tag

    try:
        return RunFilter(
            model=model,
            status=status,
            trigger=trigger,
            tags=tuple(parse_tag(t) for t in tags),
            metrics=tuple(parse_condition(m) for m in metrics),
        )
    except InvalidRequest as exc:
        raise click.BadParameter(str(exc)) from None


def _num(value: Any) -> str:
    """A metric for a table: 4 significant digits for numbers, JSON for the rest."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _duration(run: RunInfo) -> str:
    if run.ended_at is None:
        return "-"
    s = run.ended_at - run.started_at
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def _metric_columns(found: list[RunInfo], flt: RunFilter, sort: str) -> list[str]:
    """The metrics a listing shows: those filtered or sorted on, else up to four that every
    listed run has (``loss`` first)."""
    named = [c.key for c in flt.metrics]
    if sort.startswith("metrics."):
        named.append(sort.removeprefix("metrics."))
    if named:
        return list(dict.fromkeys(named))
    common = set.intersection(*(set(r.metrics) for r in found)) if found else set()
    return sorted(common, key=lambda k: (k != "loss", k))[:4]


@runs.command("ls")
@db_options
@click.option("--model", help="Only this model's runs.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--trigger", help="Only runs with this trigger kind (manual, alarm, schedule).")
@click.option("--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="Has the tag (=VALUE).")
@click.option(
    "--metric", "metrics", multiple=True, metavar="COND", help="A final metric's condition, "
    "e.g. 'roc_auc>=0.8' (> >= < <= = !=); repeat to require several.",
)  # fmt: skip
@click.option(
    "--sort", default="started_at", show_default=True,
    help="started_at, ended_at, duration, status, model, id, or metrics.NAME / params.NAME / "
    "tags.NAME (runs without the value last).",
)  # fmt: skip
@click.option("--asc", is_flag=True, help="Ascending (default: descending, newest/highest first).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@json_option
def ls(
    config: Path | None, db: str | None, model: str | None, status: str | None,
    trigger: str | None, tags: tuple[str, ...], metrics: tuple[str, ...], sort: str, asc: bool,
    limit: int, as_json: bool,
) -> None:  # fmt: skip
    """List runs: filter by model, status, trigger, tags and metric conditions; sort by a
    time, a metric or a param."""
    from rich.table import Table

    from driftd.registry import InvalidRequest
    from driftd.registry.run_query import check_sort
    from driftd.registry.run_views import find_runs

    flt = _filter(model, status, trigger, tags, metrics)
    try:
        check_sort(sort)
    except InvalidRequest as exc:
        raise click.BadParameter(str(exc), param_hint="--sort") from None
    with registry_from_options(config, db) as registry:
        found = find_runs(registry, flt, sort, not asc, limit)
    if as_json:
        echo_json([r.to_dict() for r in found])
        return
    if not found:
        say("no runs")
        return
    shown = _metric_columns(found, flt, sort)
    table = Table("run", "model", "status", "trigger", "started", "duration", *shown)
    for r in found:
        kind = (r.trigger or {}).get("kind", "-")
        row = (clip(r.id, 12), r.model, r.status, kind, when(r.started_at), _duration(r))
        table.add_row(*cells(*row, *(_num(r.metrics.get(k)) for k in shown)))
    console().print(table)


def _kv_table(title: str, values: dict[str, Any]) -> Table:
    from rich.table import Table

    from driftd.registry.run_query import flatten

    table = Table(title=title, title_justify="left")
    table.add_column("key")
    table.add_column("value")
    for k, v in sorted(flatten(values).items()):
        table.add_row(*cells(k, _num(v)))
    return table


def _series_table(series: dict[str, list[dict[str, Any]]]) -> Table:
    """One line per series: steps, first, last, min, max and its sparkline."""
    from rich.table import Table

    from driftd.registry.metric_series import sparkline

    table = Table("series", "steps", "first", "last", "min", "max", "curve", title="metric series")
    table.title_justify = "left"
    for key, points in sorted(series.items()):
        values = [p["value"] for p in points]
        nums = [v for v in values if v is not None]
        lo, hi = (min(nums), max(nums)) if nums else (None, None)
        row = (key, str(len(points)), _num(values[0]), _num(values[-1]), _num(lo), _num(hi))
        table.add_row(*cells(*row, sparkline(values)))
    return table


def _steps_table(key: str, points: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table("step", key, "recorded", title=f"{key} by step", title_justify="left")
    for p in points:
        table.add_row(*cells(str(p["step"]), _num(p["value"]), when(p["ts"])))
    return table


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@db_options
@click.option("--steps", "steps_key", metavar="KEY", help="Print this metric series as a table.")
@json_option
def show(
    run_id: str, config: Path | None, db: str | None, steps_key: str | None, as_json: bool
) -> None:
    """Show RUN (an id, or a unique prefix of 6+ characters): params, metrics, seeds, code,
    environment, dataset, versions, and each metric series as a sparkline."""
    from driftd.registry.run_views import run_detail

    with registry_from_options(config, db) as registry:
        detail = run_detail(registry, run_id)
    series = detail["series"]
    if steps_key is not None and steps_key not in series:
        known = ", ".join(sorted(series)) or "none"
        raise Failure(f"run {detail['run']['id']} has no series {steps_key!r}; it has: {known}")
    if as_json:
        if steps_key is not None:
            detail = {**detail, "series": {steps_key: series[steps_key]}}
        echo_json(detail)
        return
    _print_run(detail, steps_key)


def _print_run(detail: dict[str, Any], steps_key: str | None) -> None:
    run, ds = detail["run"], detail["dataset"]
    out = console()
    say(f"run {run['id']}: {run['model']} {run['status']} by {run['created_by']}")
    ended = when(run["ended_at"])
    trigger = json.dumps(run["trigger"], default=str) if run["trigger"] else "-"
    say(f"  started {when(run['started_at'])}, ended {ended}; trigger {trigger}")
    if ds is not None:
        say(f"  dataset {ds['id']} sha256 {ds['sha256'][:12]} rows {ds['row_count']}")
    for v in detail["versions"]:
        aliases = f" @{', @'.join(v['aliases'])}" if v["aliases"] else ""
        say(f"  version models:/{v['model']}/{v['version']} ({v['stage']}{aliases})")
    if steps_key is not None:
        out.print(_steps_table(steps_key, detail["series"][steps_key]))
        return
    for section in ("params", "metrics", "seeds", "code", "environment", "tags"):
        if run[section]:
            out.print(_kv_table(section, run[section]))
    if detail["series"]:
        out.print(_series_table(detail["series"]))


@runs.command("compare")
@click.argument("run_ids", metavar="RUN RUN...", nargs=-1, required=True)
@db_options
@click.option("--diff", "only_diff", is_flag=True, help="Show only the fields that differ.")
@json_option
def compare(
    run_ids: tuple[str, ...], config: Path | None, db: str | None, only_diff: bool, as_json: bool
) -> None:
    """Compare runs side by side: params, metrics, seeds, code, environment, dataset, trigger
    and tags, the fields that differ highlighted (and listed in --json's ``differs``); metric
    series as sparklines."""
    from driftd.registry.run_views import run_comparison

    with registry_from_options(config, db) as registry:
        cmp = run_comparison(registry, list(run_ids))
        series = registry.metric_series(cmp.runs)
    if as_json:
        echo_json({**cmp.to_dict(), "series": _series_by_key(cmp.runs, series)})
        return
    console().print(_compare_table(cmp, only_diff))
    if any(series.values()):
        console().print(_compare_series(cmp.runs, series))


def _series_by_key(run_ids: list[str], series: dict[str, Any]) -> dict[str, list[Any]]:
    """metric key -> per run (in order) its points as ``[{step, value, ts}]`` (None: none)."""
    keys = sorted({k for s in series.values() for k in s})
    return {
        k: [
            None if k not in series.get(r, {}) else [p.to_dict() for p in series[r][k]]
            for r in run_ids
        ]
        for k in keys
    }


def _compare_table(cmp: Comparison, only_diff: bool) -> Table:
    from rich.table import Table
    from rich.text import Text

    heads = [clip(r, 12) for r in cmp.runs]
    table = Table("", "field", *heads, title="≠ marks a field that differs", title_justify="left")
    for row in cmp.rows:
        if only_diff and not row.differs:
            continue
        style = "bold yellow" if row.differs else ""
        values = [clip(_num(v), 40) for v in row.values]
        texts = [Text(x, style=style) for x in (row.name, *values)]
        table.add_row("≠" if row.differs else "", *texts)
    return table


def _compare_series(run_ids: list[str], series: dict[str, Any]) -> Table:
    from rich.table import Table

    from driftd.registry.metric_series import sparkline

    table = Table("series", *(clip(r, 12) for r in run_ids), title="metric series")
    table.title_justify = "left"
    for key, per_run in _series_by_key(run_ids, series).items():
        curves = [
            "-"
            if pts is None
            else f"{sparkline([p['value'] for p in pts], 20)} {_num(pts[-1]['value'])}"
            for pts in per_run
        ]
        table.add_row(*cells(key, *curves))
    return table


@runs.command("gc")
@config_option("TOML configuration file: the models' keep_best_artifacts and the work directory.")
@click.option("--model", help="Only this model (default: every model with a retrain section).")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@actor_option
@json_option
def gc(config: Path, model: str | None, dry_run: bool, actor: str, as_json: bool) -> None:
    """Delete the artifacts of runs beyond each model's best keep_best_artifacts (by its
    primary metric); versions in staging, canary or production and aliased ones keep theirs.
    Every run's metadata stays, tagged artifacts=deleted."""
    from driftd.config import load_settings
    from driftd.retrain.retention import keep_best

    try:
        settings = load_settings(config)
    except DriftdError as exc:
        raise failure(exc) from None
    names = [model] if model else sorted(m for m, s in settings.models.items() if s.retrain)
    if model is not None and model not in settings.models:
        known = ", ".join(sorted(settings.models)) or "none"
        raise click.BadParameter(f"model {model!r} is not configured; known: {known}")
    reports = []
    with registry_from_options(config, None) as registry:
        for name in names:
            ms = settings.models[name]
            report = keep_best(registry, name, ms, settings.retrain, actor, dry_run=dry_run)
            if report is not None:
                reports.append(report.to_dict())
    if as_json:
        echo_json({"dry_run": dry_run, "models": reports})
        return
    verb = "would delete" if dry_run else "deleted"
    if not reports:
        say("no model keeps fewer than all artifacts")
    for rep in reports:
        head = f"{rep['model']}: kept {len(rep['kept'])} (best {rep['keep']} by {rep['metric']}"
        say(f"{head}, protected {len(rep['protected'])}); {verb} {len(rep['deleted'])}")
        for run_id, paths in rep["deleted"].items():
            say(f"  {verb} {run_id}: {', '.join(paths)}")
        for run_id, why in rep["skipped"].items():
            say(f"  left {run_id}: {why}")
    if on_terminal() and dry_run:
        say("(dry run: nothing was deleted)")
