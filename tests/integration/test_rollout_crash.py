"""kill -9 of driftd during a canary, again and again: after each restart the rollout resumes
from its recorded state, and no traffic decision is repeated or lost — the audit log holds
each step exactly once, in order."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from driftd.contracts.events import Prediction
from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from driftd.rollout.store import RolloutStore
from tests.integration.streams import driftd

T0 = 1_767_225_600.0
RATE = 200  # requests per event second
CONFIG = """
[pipeline]
name = "crash"
data_dir = "{dir}/state"
checkpoint_every_s = 0.5
poll_timeout_s = 0.05
[source]
kind = "file"
paths = ["{dir}/events.jsonl"]
follow = true
[checkpoint]
url = "{url}"
[metrics]
enabled = false
# No labels come: the leader judges predictions max_stream_skew_s behind their stream.
[join]
max_stream_skew_s = 30
# A restarted daemon leads again once its killed predecessor's lease has run out.
[leader]
lease_s = 2.0
renew_s = 0.5
merge_every_s = 0.2
[models.fraud]
features = {{ a = "numeric" }}
[models.fraud.rollout]
steps = [0.25, 0.5]
step_min_s = 30
[models.fraud.rollout.slo]
checks = ["error_rate", "latency", "drift"]
min_samples = 400
max_duration_s = 100000
stall_s = 100000
"""


class Driver(threading.Thread):
    """The model server: event time advances 1 s per tick; requests follow the registry's
    published weights (read from the database), as a real server follows deployment events."""

    def __init__(self, path: Path, registry: Registry) -> None:
        super().__init__(daemon=True)
        self.path, self.registry = path, registry
        self.stop = threading.Event()
        self.rng = np.random.default_rng(0)
        self.t = T0
        self.seq = 0

    def run(self) -> None:
        enc = msgspec.json.Encoder()
        with self.path.open("ab") as fh:
            while not self.stop.is_set():
                weights = self.registry.traffic("fraud") or {1: 1.0}
                versions = list(weights)
                pick = self.rng.choice(len(versions), RATE, p=list(weights.values()))
                lines = []
                for k in range(RATE):
                    self.seq += 1
                    p = Prediction(
                        id=f"r{self.seq}", model="fraud", version=str(versions[pick[k]]),
                        ts=self.t + k / RATE, features={"a": float(self.rng.normal())},
                        prediction=1.0, latency_ms=float(self.rng.lognormal(3.5, 0.4)),
                        error="boom" if self.rng.random() < 0.005 else None,
                    )  # fmt: skip
                    lines.append(enc.encode(p))
                fh.write(b"\n".join(lines) + b"\n")
                fh.flush()
                self.t += 1.0
                time.sleep(0.03)


@pytest.mark.slow
def test_kill9_during_canary_neither_repeats_nor_loses_a_decision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/driftd.db"
    engine = make_engine(url)
    upgrade(engine)
    reg = Registry(engine)
    sha = "ab" * 32
    reg.register_version("fraud", "file:///v1", sha, 1, "ops", stage="staging")
    reg.promote("fraud", 1, "production", "ops")
    reg.set_traffic("fraud", {1: 1.0}, "ops", "all on v1", "seed")
    reg.register_version("fraud", "file:///v2", sha, 1, "ci", stage="staging",
                         aliases=["challenger"], parent_version=1)  # fmt: skip
    config = tmp_path / "driftd.toml"
    config.write_text(CONFIG.format(dir=tmp_path, url=url))
    (tmp_path / "events.jsonl").touch()
    driver = Driver(tmp_path / "events.jsonl", reg)
    driver.start()
    rng = random.Random(7)
    kills = 0
    proc = driftd("run", "--config", str(config), stderr=(tmp_path / "log").open("ab"))
    try:
        deadline = time.monotonic() + 240
        while reg.get_version("fraud", 2).stage != "production":
            assert time.monotonic() < deadline, "the canary did not finish"
            assert proc.poll() is None, f"driftd exited with {proc.returncode}"
            time.sleep(rng.uniform(0.5, 2.5))
            if kills < 4 and RolloutStore(engine).active("fraud") is not None:
                proc.send_signal(signal.SIGKILL)  # mid-canary, at a random moment
                proc.wait(timeout=30)
                kills += 1
                proc = driftd("run", "--config", str(config), stderr=(tmp_path / "log").open("ab"))
    finally:
        driver.stop.set()
        driver.join(timeout=10)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert kills >= 2

    changes = [r for r in reg.audit_log(limit=100_000) if r.action == "traffic.set"]
    splits = [json.loads(r.new) for r in changes]
    assert splits == [
        {"1": 1.0},
        {"1": 0.75, "2": 0.25},
        {"1": 0.5, "2": 0.5},
        {"2": 1.0},
    ], splits  # every step once, in order: nothing repeated, nothing lost
    assert len({r.request_id for r in changes}) == len(changes)
    row = RolloutStore(engine).latest("fraud")
    assert row.phase == "promoted" and row.pending is None
    assert reg.resolve("fraud@champion").version == 2
    assert reg.verify_audit().ok
    engine.dispose()
