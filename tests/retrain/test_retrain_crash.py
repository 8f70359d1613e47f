"""kill -9 of the daemon in the middle of a retrain: the restarted daemon retries the job once
the lease expires, closes the dead attempt's run as failed with the reason, records the
snapshot's dataset once (same content, one row), and leaves no run ``running``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from driftd.config import load_settings
from driftd.registry import schema as t
from driftd.registry.configure import open_registry
from driftd.retrain.jobs import LEASE_LOST, JobQueue
from driftd.retrain.store import LabeledStore
from driftd.retrain.triggers import Triggers, retrain_sections
from tests.retrain.test_service import N_FEATURES, write_rows

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[pipeline]
data_dir = "{dir}/data"
[source]
kind = "file"
paths = ["{dir}/events.jsonl"]
follow = true
[checkpoint]
url = "{url}"
[metrics]
enabled = false
[registry]
secret = "crash-test-secret"
[retrain]
store_dir = "{dir}/labeled"
work_dir = "{dir}/work"
lease_s = 3
[models.fraud]
features = {{ {features} }}
[models.fraud.retrain]
trainer = "tests.retrain.trainers:stalls_on_first_attempt"
params = {{ epochs = 2, batch_size = 512, hidden = [16] }}
window_last_rows = 3000
deterministic = true
device = "cpu"
backoff_s = 0.1
[models.fraud.retrain.gate]
min_samples = 100
n_boot = 200
"""


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "driftd.cli", "run", "--config", str(config)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _wait_for(cond: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}; log:\n{log.read_text()}"
        time.sleep(0.1)


def _runs(engine: sa.Engine) -> list[Any]:
    """Every run (id, status, tags, dataset), oldest first."""
    query = sa.select(t.runs.c.id, t.runs.c.status, t.runs.c.tags, t.runs.c.dataset_id)
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(t.runs.c.started_at)).all())


def test_daemon_killed_mid_retrain_leaves_no_running_run_and_one_dataset(
    db_url: str, tmp_path: Path
) -> None:
    features = ", ".join(f'f{j} = "numeric"' for j in range(N_FEATURES))
    config = tmp_path / "driftd.toml"
    config.write_text(CONFIG.format(dir=tmp_path, url=db_url, features=features))
    (tmp_path / "events.jsonl").touch()
    write_rows(LabeledStore(tmp_path / "labeled"), 3000, 1, 0.0, np.array([2.0, -1, 1, 0, 0, 0]))
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    queue = JobQueue(registry.engine)
    sub = Triggers(retrain_sections(settings.models), config, queue).manual("fraud", "crash")
    assert sub.created and sub.job is not None
    log = tmp_path / "daemon.log"

    first = _daemon(config, log)
    try:  # the first attempt's trainer is running: its dataset and run are recorded
        _wait_for(
            lambda: (
                any((tmp_path / "work" / "fraud").glob("*/training"))
                and [r.status for r in _runs(registry.engine)] == ["running"]
            ),
            180,
            "the first attempt to be training",
            log,
        )
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()

    second = _daemon(config, log)
    try:
        _wait_for(
            lambda: (
                (job := queue.get(sub.job.id)) is not None  # type: ignore[union-attr]
                and job.state in ("succeeded", "failed")
            ),
            300,
            "the retried job to end",
            log,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    job = queue.get(sub.job.id)
    assert job is not None and job.state == "succeeded", job
    assert job.attempts == 2 and job.error == LEASE_LOST

    runs = _runs(registry.engine)
    assert [r.status for r in runs] == ["failed", "finished"]  # none left running
    abandoned, retried = runs
    assert abandoned.tags["job_attempt"] == 1
    assert abandoned.tags["end_reason"] == f"attempt 1 of job {job.id} abandoned: {LEASE_LOST}"
    assert retried.tags["job_attempt"] == 2 and "end_reason" not in retried.tags
    with registry.engine.connect() as conn:
        hashes = conn.execute(sa.select(t.datasets.c.sha256)).scalars().all()
    assert len(hashes) == len(set(hashes)) == 1  # one row per content hash
    assert abandoned.dataset_id == retried.dataset_id
    assert registry.resolve("fraud@challenger").run_id == retried.id
    assert registry.verify_audit().ok
    registry.engine.dispose()
