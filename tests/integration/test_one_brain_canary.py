"""A canary judged by three `driftd run` instances as one, through kill -9 of its leader.

Three instances share a consumer group (six partitions on the tansu broker) and a PostgreSQL
database. A model server (a thread) produces requests to Kafka at the traffic weights the
registry publishes. A challenger waits in staging: the leader starts the canary, steps it up
and promotes it, while the current leader is SIGKILLed again and again mid-canary and
replaced. Every traffic step is in the audit log exactly once, in order; one leader at a time.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest

from driftd.contracts.events import Prediction
from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from driftd.rollout.store import RolloutStore
from tests.integration.cluster import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.postgres]

T0 = 1_767_225_600.0
RATE = 200  # requests per event second
KILLS = 5
CONFIG = """
[pipeline]
name = "{name}"
data_dir = "{dir}/state"
checkpoint_every_s = 1
poll_timeout_s = 0.1
[source]
kind = "kafka"
[source.kafka]
bootstrap_servers = "{bootstrap}"
predictions_topic = "{predictions}"
labels_topic = "{labels}"
session_timeout_ms = 6000
heartbeat_interval_ms = 1000
[checkpoint]
url = "{url}"
[metrics]
enabled = false
# No labels come: the leader judges predictions max_stream_skew_s behind their stream.
[join]
max_stream_skew_s = 30
[leader]
lease_s = 4.0
renew_s = 1.0
idle_s = 20.0
merge_every_s = 0.5
[models.fraud]
features = {{ a = "numeric" }}
[models.fraud.rollout]
steps = [0.25, 0.5]
step_min_s = 120
[models.fraud.rollout.slo]
checks = ["error_rate", "latency", "drift"]
min_samples = 400
max_duration_s = 100000
stall_s = 100000
"""


class Server(threading.Thread):
    """The model server: event time advances 1 s per tick; requests follow the registry's
    published weights, keyed by id (so they spread over the partitions)."""

    def __init__(self, bootstrap: str, topic: str, registry: Registry) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.topic, self.registry = topic, registry
        self.stop = threading.Event()
        self.rng = np.random.default_rng(0)
        self.t, self.seq = T0, 0

    def run(self) -> None:
        enc = msgspec.json.Encoder()
        while not self.stop.is_set():
            weights = self.registry.traffic("fraud") or {1: 1.0}
            versions = list(weights)
            pick = self.rng.choice(len(versions), RATE, p=list(weights.values()))
            for k in range(RATE):
                self.seq += 1
                p = Prediction(
                    id=f"r{self.seq}", model="fraud", version=str(versions[pick[k]]),
                    ts=self.t + k / RATE, features={"a": float(self.rng.normal())},
                    prediction=1.0, latency_ms=float(self.rng.lognormal(3.5, 0.4)),
                    error="boom" if self.rng.random() < 0.005 else None,
                )  # fmt: skip
                self.producer.send(self.topic, value=enc.encode(p), key=p.id.encode())
            self.producer.flush()
            self.t += 1.0
            # ~15 event seconds per wall second: the canary (~500 event s) outlasts the
            # KILLS leader kills (0.5-3 s apart, plus restarts) even on a loaded machine
            time.sleep(0.06)
        self.producer.close()


def test_a_canary_steps_once_in_order_through_leader_kills(
    kafka_broker: str,
    topics: Callable[[int], tuple[str, str]],
    pg_url: str,
    tmp_path: Path,
    unique_name: str,
) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    reg = Registry(engine)
    sha = "ab" * 32
    reg.register_version("fraud", "file:///v1", sha, 1, "ops", stage="staging")
    reg.promote("fraud", 1, "production", "ops")
    reg.set_traffic("fraud", {1: 1.0}, "ops", "all on v1", "seed")
    reg.register_version("fraud", "file:///v2", sha, 1, "ci", stage="staging",
                         aliases=["challenger"], parent_version=1)  # fmt: skip
    predictions, labels = topics(6)
    config = tmp_path / "driftd.toml"
    values = {"name": unique_name, "dir": tmp_path, "url": pg_url, "bootstrap": kafka_broker}
    config.write_text(CONFIG.format(**values, predictions=predictions, labels=labels))
    cluster = Cluster(config, pg_url, unique_name, tmp_path / "logs")
    server = Server(kafka_broker, predictions, reg)
    rng = random.Random(11)
    kills = 0
    try:
        for _ in range(3):
            cluster.start()
        cluster.wait_leader(120)
        server.start()
        deadline = time.monotonic() + 300
        while reg.get_version("fraud", 2).stage != "production":
            assert time.monotonic() < deadline, "the canary did not finish\n" + cluster.tails()
            cluster.check_alive()
            time.sleep(rng.uniform(0.5, 3.0))
            lead = cluster.leader()
            if kills < KILLS and lead and RolloutStore(engine).active("fraud") is not None:
                cluster.kill(lead[0])  # mid-canary, at a random moment
                kills += 1
                cluster.start()
        server.stop.set()
        server.join(timeout=30)
        cluster.stop_all()
    finally:
        server.stop.set()
        cluster.close()
    assert kills == KILLS, f"only {kills} kills landed mid-canary"

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
    history = cluster.history()
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert len(history) >= kills + 1
    for prev, nxt in itertools.pairwise(history):
        assert nxt["acquired_at"] >= prev["valid_until"], (prev, nxt)  # one leader at a time
    engine.dispose()
