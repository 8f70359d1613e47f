"""The command line's exit codes: stable, so scripts and CI pipelines can branch on them.

``driftd --help`` lists them (``EPILOG``); a test holds the two equal.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What a ``driftd`` command's exit status means."""

    OK = 0  # done as asked
    ERROR = 1  # a driftd error: a missing model, a conflict, an unreachable database
    USAGE = 2  # a bad command line or configuration (as click's usage errors)
    REFUSED = 3  # a candidate refused by its gate or a comparison, an approval refused
    HALTED = 4  # ``rollout status``: the rollout halted or was rolled back; it needs a decision
    VERIFY_FAILED = 5  # a verification failed: the audit chain, lineage, a snapshot's hash
    CHECK_FAILED = 6  # ``driftd check``: a detector alarmed or a data-quality check failed


MEANING = {
    Exit.OK: "success",
    Exit.ERROR: "error (missing object, conflict, unreachable database)",
    Exit.USAGE: "bad command line or configuration",
    Exit.REFUSED: "refused: a candidate failed its gate or comparison, an approval was refused",
    Exit.HALTED: "driftd rollout status: the rollout is halted or was rolled back",
    Exit.VERIFY_FAILED: "verification failed (audit chain, lineage, content hash)",
    Exit.CHECK_FAILED: "driftd check: a detector alarmed or a data-quality check failed",
}

EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {int(code)}  {text}" for code, text in MEANING.items())
