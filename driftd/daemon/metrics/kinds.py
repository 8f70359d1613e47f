"""What every family's help says besides its meaning: its unit, and what a restart does to it.

A family is kept in the checkpoint (it continues across restarts), counted by this process
(from 0 at start), read from the registry database (the same on every instance, whatever
restarts) or read live at scrape (recomputed by the new process). ``help_text`` writes the two
sentences; tests hold every family to one unit and one kind.
"""

from __future__ import annotations

from typing import Literal, get_args

RESTORED = " Kept in the checkpoint: continues across restarts."
"""The sentence that ends the help of every family read from the checkpointed state."""
PROCESS_LOCAL = "since the process started"
"""The phrase in the help of every process-local family."""
COUNTED_HERE = f" Counted {PROCESS_LOCAL}: starts at 0 after a restart."
"""The sentence that ends the help of every process-local family."""
FROM_REGISTRY = (
    " Read from the registry database at scrape: survives restarts, same on every instance."
)
"""The sentence that ends the help of every family read from the registry's tables."""
LIVE = " Not kept: recomputed after a restart."
"""The sentence that ends the help of every family recomputed by each process."""
KINDS = (RESTORED, COUNTED_HERE, FROM_REGISTRY, LIVE)
"""Every kind; each family's help ends with exactly one (or names ``PROCESS_LOCAL``)."""

Unit = Literal[
    "seconds",
    "unix timestamp in seconds",
    "bytes",
    "events",
    "messages",
    "rows",
    "predictions",
    "labels",
    "values",
    "alarms",
    "buckets",
    "merges",
    "writes",
    "failures",
    "checkpoints",
    "file changes",
    "versions",
    "jobs",
    "incidents",
    "ratio",
    "squared label units",
    "ratio (accuracy) or label units (rmse)",
    "1 or 0",
    "epoch number",
    "detector statistic",
    "natural log of an e-value",
]
UNITS: tuple[str, ...] = get_args(Unit)
"""The units a help may name (``Unit: <unit>.``)."""


def help_text(what: str, unit: Unit, kind: str) -> str:
    """A family's help: ``what`` it measures, ``Unit: <unit>.``, then what a restart does
    (one of ``KINDS``, or a sentence of its own that names ``PROCESS_LOCAL``)."""
    return f"{what} Unit: {unit}.{kind}"
