"""``driftd rules``: write the Prometheus recording and alerting rules for a configuration
(each model's SLOs, the job, the links) as YAML, or as JSON with ``--json``."""

from __future__ import annotations

from pathlib import Path

import click

from driftd.cli.options import config_option
from driftd.cli.output import echo_json


@click.command(short_help="Write the Prometheus rules (SLO burn rates, alerts) for a config.")
@config_option(envvar=True)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the rules to this file (default: standard output).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rules document as JSON.")
def rules(config: Path, out: Path | None, as_json: bool) -> None:
    """Write Prometheus rules for the configuration: recording rules, each model's
    multiwindow burn-rate alerts for its [models.NAME.slo], and driftd's operational alerts.
    Load them with rule_files in prometheus.yml; check them with `promtool check rules`."""
    from driftd.alerts.document import rules_document, rules_yaml
    from driftd.config import load_settings

    settings = load_settings(config)  # a ConfigError is shown by DriftdGroup (exit 2)
    if as_json:
        if out is not None:
            raise click.UsageError("--json prints to standard output; drop --out")
        echo_json(rules_document(settings), strict=True, times=False)
        return
    text = rules_yaml(settings, source=str(config))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
