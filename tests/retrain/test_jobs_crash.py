"""A worker SIGKILLed during a running job: its trainer dies with it, the job is recovered
once the lease expires and retried by another worker, and two trainers of the job are never
alive at the same time (checked from the trainers' own start/tick/stop log)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftd.db import make_engine
from driftd.retrain.jobs import LEASE_LOST, JobQueue

pytestmark = pytest.mark.slow
LEASE_S = 2.0
ROOT = Path(__file__).resolve().parents[2]


def _worker(url: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.retrain.worker_proc", url, str(LEASE_S)]
    return subprocess.Popen(cmd, cwd=ROOT)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has finished running


def _events(log: Path) -> list[tuple[str, int, float]]:
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [(what, int(pid), float(ts)) for what, pid, ts in rows]


def _wait_for(cond: object, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def _renewed(queue: JobQueue, job_id: str) -> bool:
    """Whether the job's running attempt has renewed its lease since it was claimed."""
    job = queue.get(job_id)
    if job is None or job.state != "running" or job.started_at is None:
        return False
    return job.heartbeat_at is not None and job.heartbeat_at > job.started_at


def test_killed_worker_job_is_retried_never_run_twice_in_parallel(
    db_url: str, tmp_path: Path
) -> None:
    queue = JobQueue(make_engine(db_url))
    log = tmp_path / "trainer.log"
    spec = {"entry": "tests.retrain.trainers:sleepy", "params": {"seconds": 2.0, "log": str(log)}}
    sub = queue.submit("m", {"kind": "manual", "key": "crash"}, spec, 3, backoff_s=0.1)
    assert sub.job is not None
    job_id = sub.job.id
    first = _worker(db_url)
    try:
        _wait_for(lambda: any(e[0] == "tick" for e in _events(log)), 60, "the first trainer")
        # Killed mid-job: after the worker has renewed its lease at least once, so the retry
        # must wait for the renewed lease, not the one the claim took.
        _wait_for(lambda: _renewed(queue, job_id), 60, "a heartbeat of the first worker")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.time()
    finally:
        if first.poll() is None:
            first.kill()
    trainer = _events(log)[0][1]
    _wait_for(lambda: not _alive(trainer), 3, "the orphaned trainer to die (PDEATHSIG)")
    dead_seen = time.time()
    assert dead_seen - killed_at < 3
    running = queue.get(sub.job.id)
    assert running is not None and running.state == "running"  # until its lease expires
    second = _worker(db_url)
    try:
        assert second.wait(60) == 0
    finally:
        if second.poll() is None:
            second.kill()
    job = queue.get(sub.job.id)
    assert job is not None and job.state == "succeeded", job
    assert job.attempts == 2 and job.error == LEASE_LOST
    events = _events(log)
    starts = [(pid, ts) for what, pid, ts in events if what == "start"]
    assert len(starts) == 2 and starts[0][0] == trainer
    (old, _), (new, new_start) = starts
    old_last = max(ts for _, pid, ts in events if pid == old)
    assert old_last < killed_at < dead_seen <= new_start  # no overlap, never two at once
    assert any(what == "stop" and pid == new for what, pid, _ in events)
    assert not any(what == "stop" and pid == old for what, pid, _ in events)
    assert running.lease_until is not None and new_start >= running.lease_until
    queue.engine.dispose()
