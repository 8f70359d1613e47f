"""Kafka integration: a real broker, multi-partition topics, DLQ topics, consumer groups."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from driftd.config import load_settings
from driftd.daemon import app as app_mod
from driftd.sim.synth import StreamSpec, generate
from tests.integration.streams import (
    driftd,
    kafka_config,
    kafka_truth,
    publish,
    status,
    wait_consumed,
)

pytestmark = pytest.mark.kafka

SPEC = StreamSpec(events=4000, seed=11, malformed_rate=0.01, duplicate_rate=0.02)


def _dlq_records(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list:
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    out = []
    end = time.monotonic() + timeout
    while len(out) < expected and time.monotonic() < end:
        for tp_recs in c.poll(500).values():
            out.extend(tp_recs)
    c.close()
    return out


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_totals_and_dead_letters_exact(kafka_broker, topics, tmp_path, unique_name, client):
    """Labels before and after predictions, duplicates, malformed messages -> .dlq topics."""
    stream = generate(SPEC)
    names = topics(3)
    counts = publish(stream, kafka_broker, names)
    cfg = kafka_config(
        SPEC,
        tmp_path,
        kafka_broker,
        names,
        unique_name,
        f"sqlite:///{tmp_path}/cp.db",
        client=client,
    )
    settings = load_settings(cfg, env={})
    application = app_mod.build(settings, serve_metrics=False)
    application.source.bind(application.runner)  # type: ignore[attr-defined]
    t = threading.Thread(target=application.runner.run, daemon=True)
    t.start()
    total = sum(counts.values())
    end = time.monotonic() + 90
    while application.pipeline.summary()["consumed"] < total and time.monotonic() < end:
        time.sleep(0.2)
    application.runner.stop()
    t.join(30)
    application.close()
    summary = status(cfg)
    assert summary["consumed"] == total
    assert summary["models"] == kafka_truth(stream, 3)["models"]
    assert summary["dead_lettered"] == stream.truth["dead_lettered"]
    # Every dead letter is on the .dlq topic of the topic it came from, with its reason.
    dlq = _dlq_records(kafka_broker, names[0] + ".dlq", 1) + _dlq_records(
        kafka_broker, names[1] + ".dlq", 1
    )
    reasons = Counter(dict(r.headers)["driftd-reason"].decode() for r in dlq)
    assert sum(reasons.values()) >= stream.truth["dead_lettered"]["total"]
    assert set(reasons) == set(stream.truth["dead_lettered"]["by_reason"])
    raws = {r.value for r in dlq}
    assert all(raw in raws or len(raw) > 16_384 for raw, _ in stream.bad)


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_two_daemons_split_partitions_totals_exact(
    kafka_broker, topics, tmp_path, unique_name, client
):
    """Two `driftd run` processes in one group share the partitions; the sum is exact."""
    spec = StreamSpec(events=6000, seed=12, malformed_rate=0.005)
    stream = generate(spec)
    names = topics(4)
    counts = publish(stream, kafka_broker, names)
    cfg = kafka_config(
        spec, tmp_path, kafka_broker, names, unique_name, f"sqlite:///{tmp_path}/cp.db"
    )
    logs = [open(tmp_path / f"d{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    procs = [driftd("run", "--config", str(cfg), stdout=f, stderr=f) for f in logs]
    try:
        summary = wait_consumed(cfg, sum(counts.values()), 120, procs)
        parts = {c["partition"] for c in summary["checkpoints"]}
        assert parts == {0, 1, 2, 3}
        # Both members joined the group and own partitions (each logs its assignment).
        end = time.monotonic() + 60
        while not all("partitions assigned" in Path(f.name).read_text() for f in logs):
            assert time.monotonic() < end, "a member never got partitions"
            assert all(p.poll() is None for p in procs), "a member exited"
            time.sleep(0.1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(20) == 0
    final = status(cfg)
    assert final["models"] == kafka_truth(stream, 4)["models"]
    assert final["dead_lettered"] == stream.truth["dead_lettered"]


def test_labels_consumed_before_their_predictions_still_join(
    kafka_broker, topics, tmp_path, unique_name
):
    """All labels are consumed first; the predictions are published only afterwards."""
    spec = StreamSpec(events=3000, seed=13, malformed_rate=0.0)
    stream = generate(spec)
    names = topics(2)
    n_labels = sum(publish(stream, kafka_broker, names, only="label").values())
    cfg = kafka_config(
        spec, tmp_path, kafka_broker, names, unique_name, f"sqlite:///{tmp_path}/cp.db"
    )
    log = (tmp_path / "d.log").open("wb")
    proc = driftd("run", "--config", str(cfg), stdout=log, stderr=log)
    try:
        early = wait_consumed(cfg, n_labels, 60, [proc])
        assert early["models"]["fraud"]["joined"] == 0
        assert early["models"]["fraud"]["pending_labels"] > 0  # waiting for predictions
        n_preds = sum(publish(stream, kafka_broker, names, only="prediction").values())
        wait_consumed(cfg, n_labels + n_preds, 60, [proc])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    final = status(cfg)
    expected = kafka_truth(stream, 2)["models"]
    assert final["models"] == expected
    assert final["models"]["fraud"]["joined"] > 0.8 * final["models"]["fraud"]["labels"]
