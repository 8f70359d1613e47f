"""The daemon's retraining loop as real processes: a drifting stream → a drift alarm → a queued
job (id from the alarm) → the worker's subprocess retrains → a registered challenger whose
lineage names the alarm; the daemon keeps consuming events meanwhile and loses none."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftd.config import load_settings
from driftd.registry.configure import open_registry
from driftd.retrain.jobs import JobQueue
from tests.integration.streams import driftd, status

RETRAIN = """
[retrain]
store_dir = "{dir}/labeled"
work_dir = "{dir}/retrain"
lease_s = 10
store_flush_rows = 2000

[models.fraud.retrain]
params = {{ epochs = 3, batch_size = 512, hidden = [32, 32] }}
window_last_rows = 4000
min_new_rows = 1000
cooldown_s = 100000
device = "cpu"
deterministic = true
timeout_s = 180
[models.fraud.retrain.gate]
min_samples = 100
n_boot = 300
"""


@pytest.mark.slow
def test_drift_alarm_retrains_while_the_daemon_keeps_consuming(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    subprocess.run(
        [sys.executable, "-m", "driftd.cli", "generate", "--out", str(out), "--events", "20000",
         "--seed", "1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    config = out / "driftd.toml"
    text = config.read_text().replace('kind = "file"', 'kind = "file"\nfollow = true')
    config.write_text(text + RETRAIN.format(dir=out / "state"))
    truth = json.loads((out / "truth.json").read_text())

    proc = driftd("run", "--config", str(config), stderr=subprocess.PIPE)
    settings = load_settings(config)
    try:
        deadline = time.monotonic() + 240
        job = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                registry = open_registry(settings.registry, settings.registry_url, False)
            except Exception:  # the daemon creates the schema on its first start
                time.sleep(0.5)
                continue
            jobs = JobQueue(registry.engine).list(model="fraud")
            registry.engine.dispose()
            if jobs and jobs[0].state in ("succeeded", "failed"):
                job = jobs[0]
                break
            time.sleep(1)
        assert job is not None, "no retrain job finished in time"
        assert job.state == "succeeded", job.error
        assert job.trigger["kind"] == "alarm" and job.trigger["key"]["kind"] == "drift"
        # The daemon went on consuming while the job ran, and lost nothing.
        end = time.monotonic() + 60
        while status(config)["models"] != truth["models"] and time.monotonic() < end:
            time.sleep(1)
        assert status(config)["models"] == truth["models"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0

    registry = open_registry(settings.registry, settings.registry_url, False)
    try:
        v = registry.resolve("fraud@challenger")
        assert v.stage == "staging" and v.evaluation is not None
        tree = registry.lineage("fraud@challenger")
        assert tree["trigger"]["key"] == job.trigger["key"]  # lineage names the alarm
        assert tree["dataset"]["row_count"] == 4000
        assert registry.verify_audit().ok
    finally:
        registry.engine.dispose()
    # Labeled rows were stored for later retrains (event-time retention keeps them).
    assert list((out / "state" / "labeled" / "model=fraud").glob("date=*/part-*.parquet"))
