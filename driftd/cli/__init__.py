"""driftd's command line: ``driftd run | replay | status | demo | registry … | retrain … |
audit … | serve``. Each subcommand imports what it uses when it runs, so ``driftd --help``
stays fast."""

from driftd.cli.main import cli, main

__all__ = ["cli", "main"]
