"""``serve-sim`` against the real tansu broker: events on the topics, weights from the control
topic changing mid-run, verified by consuming the topics."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from driftd.contracts.events import Deployment, decode_label, decode_prediction, encode
from driftd.sim.world import World
from tests.integration.conftest import REPO
from tests.sim.test_server import train_and_register

pytestmark = pytest.mark.kafka


def consume(
    bootstrap: str, topic: str, until: Callable[[list[Any]], bool], timeout: float
) -> list[Any]:
    """Records of ``topic`` from the beginning, until ``until(records)`` or the timeout."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out: list[Any] = []
    end = time.monotonic() + timeout
    while not until(out) and time.monotonic() < end:
        for recs in c.poll(300).values():
            out.extend(recs)
    c.close()
    return out


def test_serve_sim_publishes_events_and_follows_the_control_topic(
    kafka_broker: str, topics: Callable[[int], tuple[str, str]], tmp_path: Path
) -> None:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    preds_topic, labels_topic = topics(1)
    control = f"control-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker)
    admin.create_topics([NewTopic(control, 1, 1)])
    admin.close()

    db = tmp_path / "reg.db"
    registry = train_and_register(tmp_path, World(4, 2, None), f"sqlite:///{db}")
    v1 = registry.get_version("fraud", 1)
    registry.register_version("fraud", v1.artifact_uri, v1.artifact_sha256, v1.artifact_size, "t")
    registry.promote("fraud", 1, "staging", "t")
    registry.promote("fraud", 1, "production", "t")

    producer = KafkaProducer(bootstrap_servers=kafka_broker, acks="all")
    # Published before the server starts: read from the beginning, they are seen but skipped.
    other = Deployment(model="other", ts=1.0, weights={"9": 1.0}, reason="", decision_id="o")
    producer.send(control, key=b"other", value=encode(other))
    producer.send(control, key=b"fraud", value=b'{"event":"alias_moved","model":"fraud"}')
    producer.flush()

    feats = ", ".join(
        [f'f{j} = "numeric"' for j in range(4)]
        + ['country = "categorical"', 'device = "categorical"']
    )
    config = tmp_path / "driftd.toml"
    config.write_text(
        f'[source]\nkind = "kafka"\n[source.kafka]\nbootstrap_servers = "{kafka_broker}"\n'
        f'predictions_topic = "{preds_topic}"\nlabels_topic = "{labels_topic}"\n'
        f'[checkpoint]\nurl = "sqlite:///{db}"\n'
        f'[registry]\ncontrol_topic = "{control}"\ncontrol_bootstrap_servers = "{kafka_broker}"\n'
        f'artifact_roots = ["{tmp_path}"]\n'  # where the model was trained
        f"[models.fraud]\nfeatures = {{ {feats} }}\n"
    )
    cmd = [sys.executable, "-c", "from driftd.sim.cli import serve_sim; serve_sim()"]
    args = ["--config", str(config), "--rate", "100", "--duration", "8", "--label-delay", "1"]
    proc = subprocess.Popen(
        [*cmd, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        early = consume(kafka_broker, preds_topic, lambda r: len(r) >= 50, 30)
        assert len(early) >= 50, (
            proc.stdout.read().decode() if proc.poll() is not None and proc.stdout else ""
        )
        # Mid-run, the rollout moves all traffic to version 2 (as a registry outbox event).
        outbox = {
            "event": "deployment",
            "model": "fraud",
            "ts": time.time(),
            "actor": "driftd",
            "weights": {"1": 0.0, "2": 1.0},
            "reason": "promote",
            "decision_id": "d-1",
        }
        producer.send(control, key=b"fraud", value=msgspec.json.encode(outbox))
        producer.flush()
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        producer.close()
    assert proc.returncode == 0, output.decode()

    found = re.search(rb"served (\d+) requests; (\d+) labels were still pending", output)
    assert found, output.decode()
    served, pending = int(found[1]), int(found[2])
    raw_preds = consume(kafka_broker, preds_topic, lambda r: len(r) >= served, 20)
    preds = [decode_prediction(r.value) for r in raw_preds]
    assert [r.key.decode() for r in raw_preds] == [p.id for p in preds]
    assert (
        len(preds) == served and 500 <= served <= 800 and len({p.id for p in preds}) == len(preds)
    )
    versions = [p.version for p in preds]
    switch = versions.index("2")
    assert switch >= 50 and set(versions[:switch]) == {"1"} and set(versions[switch:]) == {"2"}

    labels = [
        decode_label(r.value)
        for r in consume(kafka_broker, labels_topic, lambda r: len(r) >= served - pending, 20)
    ]
    by_id = {p.id: p for p in preds}
    assert len({lab.id for lab in labels}) == len(labels) == served - pending
    for lab in labels:
        assert lab.ts == pytest.approx(by_id[lab.id].ts + 1.0)
