"""A retrain worker process for the crash test: ``python -m tests.retrain.worker_proc URL LEASE``.

Runs jobs until none is queued or running (or 60 s pass), with a short lease."""

from __future__ import annotations

import sys
import time

from driftd.db import make_engine
from driftd.retrain.executor import SubprocessExecutor
from driftd.retrain.jobs import JobQueue
from driftd.retrain.worker import Worker


def main() -> None:
    url, lease = sys.argv[1], float(sys.argv[2])
    queue = JobQueue(make_engine(url))
    worker = Worker(queue, SubprocessExecutor(timeout_s=60), lease_s=lease, poll_s=0.05)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if not queue.list(state="queued") and not queue.list(state="running"):
            return
        if worker.run_once() is None:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
