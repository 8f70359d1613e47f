"""The ``driftd`` command line: the top-level group and where each subcommand lives.

Subcommands are imported when one runs (``driftd.cli.lazy``), so ``driftd --help`` and
``driftd --version`` load click and nothing heavy; the help lists each by the summary kept
here (``tests/unit/test_cli_startup.py`` holds each equal to its command's own).
"""

from __future__ import annotations

import logging
import sys

import click

from driftd import __version__
from driftd.cli.errors import JSON_ERRORS, DriftdGroup
from driftd.cli.exitcodes import EPILOG
from driftd.cli.lazy import Lazy, LazyGroup

COMMANDS: dict[str, Lazy] = {
    "run": Lazy("driftd.cli.daemon:run", help="Run the daemon until SIGTERM or SIGINT."),
    "replay": Lazy(
        "driftd.cli.daemon:replay",
        short_help="Process event files to their end and print a summary.",
    ),
    "status": Lazy(
        "driftd.cli.daemon:status",
        short_help="Show the counts and offsets held in the checkpoints.",
    ),
    "config": Lazy("driftd.cli.daemon:config", help="Inspect configuration."),
    "db": Lazy("driftd.cli.daemon:db", help="Manage driftd's database schema."),
    "generate": Lazy(
        "driftd.cli.simulate:generate",
        short_help="Write a synthetic stream with a known drift point.",
    ),
    "demo": Lazy(
        "driftd.cli.simulate:demo",
        short_help="Run the whole loop on simulated traffic (files, SQLite, CPU).",
    ),
    "registry": Lazy(
        "driftd.cli.registry:registry",
        help="Models, versions, stages and aliases: list, register, promote, approve, roll back.",
    ),
    "lineage": Lazy(
        "driftd.cli.ops:lineage",
        help="Print REF's lineage: version → run → dataset → trigger → parent, approvals, history.",
    ),
    "audit": Lazy("driftd.cli.ops:audit", help="The hash-chained audit log: verify it, read it."),
    "token": Lazy(
        "driftd.cli.ops:token",
        help="API tokens for the HTTP API (roles: viewer, approver, admin).",
    ),
    "outbox": Lazy(
        "driftd.cli.ops:outbox",
        help="Deliver registry events to webhooks and the Kafka control topic.",
    ),
    "api": Lazy("driftd.cli.ops:api", help="The registry's HTTP API."),
    "incidents": Lazy(
        "driftd.cli.incidents:incidents",
        help="Incidents: alarms grouped per model, version and stream; acknowledge and resolve "
        "them.",
    ),
    "report": Lazy(
        "driftd.cli.incidents:report",
        short_help="Write an incident's self-contained HTML report.",
    ),
    "runs": Lazy(
        "driftd.cli.runs:runs",
        help="Training runs: list, filter and sort them, show one, compare several, clean "
        "artifacts.",
    ),
    "rollout": Lazy(
        "driftd.cli.rollout:rollout",
        help="Canary rollouts: where each model's stands, the evidence behind its last verdict, "
        "and manual control (pause, resume, promote, abort).",
    ),
    "check": Lazy(
        "driftd.cli.check:check",
        short_help="Gate input data in CI: exit 6 when a detector alarms or a data check fails.",
    ),
    "rules": Lazy(
        "driftd.cli.rules:rules",
        short_help="Write the Prometheus rules (SLO burn rates, alerts) for a config.",
    ),
    "retrain": Lazy(
        "driftd.cli.retrain:retrain",
        help="Retrain a model: now (driftd retrain MODEL), queued (submit), and its jobs and runs.",
    ),
    "serve-sim": Lazy(
        "driftd.sim.cli:serve_sim",
        help="Serve a model's registered versions to a simulated world; emit the events.",
    ),
}


class RootGroup(DriftdGroup, LazyGroup):
    """driftd's own errors shown as one line (DriftdGroup); subcommands imported on use."""


@click.group(
    cls=RootGroup,
    lazy=COMMANDS,
    epilog=f"{EPILOG}\n\n{JSON_ERRORS}",
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


def main() -> None:
    """Entry point of the console script."""
    if not logging.getLogger().handlers:
        from driftd.logs import install

        install("auto", "WARNING")  # LogSettings' defaults but WARNING, without loading config
    try:
        cli.main(prog_name="driftd")
    except KeyboardInterrupt:
        sys.exit(130)
