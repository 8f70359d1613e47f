"""``driftd check``: a CI gate on a model's input data, before a deployment.

The files go through the model's configured detectors and window checks exactly as the daemon
would run them (a replay from empty state); the command exits CHECK_FAILED (6) when any
detector alarms or the data-quality check fails, 0 when clean, and lists every check with its
statistic, threshold and verdict.
"""

from __future__ import annotations

from pathlib import Path

import click

from driftd.cli.exitcodes import Exit
from driftd.cli.options import config_option, json_option
from driftd.cli.output import echo_json, say
from driftd.cli.rollout import iso


class _BadConfig(click.ClickException):
    exit_code = int(Exit.USAGE)


class _Failed(click.ClickException):
    exit_code = int(Exit.ERROR)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


SHORT_HELP = "Gate input data in CI: exit 6 when a detector alarms or a data check fails."


@click.command("check", short_help=SHORT_HELP)
@config_option(envvar=True, exists=True, dir_okay=False)
@click.option("--model", help="Check only this model (default: every configured model).")
@click.option(
    "--reference",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Known-good event file read first: detectors warm up on it and pinned window checks "
    "take their reference from it; its own alarms are ignored.",
)
@click.option(
    "--max-dead-letter-rate",
    "max_dead_rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of unreadable or schema-breaking events above which the data-quality check fails.",
)
@click.argument(
    "data", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False)
)
@json_option
def check(
    config: Path,
    model: str | None,
    reference: Path | None,
    max_dead_rate: float,
    data: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Gate DATA (event files: JSON lines, optionally gzip) before a deployment: run the
    model's configured detectors and window checks on them; exit 6 when any detector alarms
    or the data-quality check (dead letters) fails, 0 when clean."""
    from driftd.check.run import run_check
    from driftd.config import load_settings
    from driftd.daemon.detector_monitor import check_detectors
    from driftd.errors import ConfigError, DriftdError

    try:
        settings = load_settings(config)
        check_detectors(settings.models)
        report = run_check(settings, list(data), reference, model, max_dead_rate)
    except ConfigError as exc:
        raise _BadConfig(str(exc)) from None
    except DriftdError as exc:
        raise _Failed(str(exc)) from None
    doc = report.to_dict()
    if as_json:
        doc["reference_end_ts"] = iso(report.reference_end_ts)
        for line in doc["checks"]:
            line["first_alarm_ts"] = iso(line["first_alarm_ts"])
        echo_json(doc)
    else:
        for x in report.lines:
            mark = "PASS" if x.verdict == "pass" else "FAIL"
            when = f" first at {iso(x.first_alarm_ts)}" if x.first_alarm_ts is not None else ""
            say(
                f"{mark}  {x.model} {x.check} on {x.stream}: statistic {_num(x.statistic)}, "
                f"threshold {_num(x.threshold)}; {x.detail}{when}"
            )
        failed = doc["failed"]
        say(f"{report.events} events; {failed} check(s) failed" if failed else
            f"{report.events} events; every check passed")  # fmt: skip
    if not report.ok:  # the report said which: a plain exit, no second document under --json
        click.get_current_context().exit(int(Exit.CHECK_FAILED))
