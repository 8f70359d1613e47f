"""Trainer entry points for the job-queue tests, run in the executor's child process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def ok(value: int = 1) -> dict[str, Any]:
    """Succeeds at once."""
    return {"value": value, "pid": os.getpid(), "job": os.environ.get("DRIFTD_JOB_ID")}


def raises(message: str = "bad hyperparameter") -> None:
    """Raises like a buggy trainer."""
    raise ValueError(message)


def hog(nbytes: int) -> None:
    """Allocates (and touches) far more than the memory limit."""
    import numpy as np

    a = np.ones(nbytes, dtype=np.uint8)
    raise AssertionError(f"allocated {a.nbytes} bytes under the limit")


def hang(seconds: float = 3600.0) -> None:
    """Never finishes in time."""
    time.sleep(seconds)


def exits(code: int) -> None:
    """Dies without a Python exception (e.g. a native crash)."""
    os._exit(code)


def sleepy(seconds: float, log: str) -> dict[str, Any]:
    """Records its start, a tick every 50 ms, and its stop in ``log`` (pid and wall time)."""
    path = Path(log)

    def note(what: str) -> None:
        with path.open("a") as fh:
            fh.write(f"{what} {os.getpid()} {time.time():.6f}\n")
            fh.flush()
            os.fsync(fh.fileno())

    note("start")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
        note("tick")
    note("stop")
    return {"pid": os.getpid()}


def stalls_on_first_attempt(request: Any) -> Any:
    """The built-in trainer, except that a queued job's first attempt marks ``training`` beside
    its artifact directory and then hangs until it is killed (a crash mid-retrain)."""
    from driftd.retrain.tabular import train

    if os.environ.get("DRIFTD_JOB_ATTEMPT") == "1":
        marker = Path(request.out_dir).parent / "training"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        time.sleep(3600)
    return train(request)
