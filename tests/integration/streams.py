"""Helpers shared by integration tests: publish a synthetic stream, write configs, run driftd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from driftd.sim.synth import Stream, StreamSpec, config_toml


def publish(
    stream: Stream, bootstrap: str, topics: tuple[str, str], only: str | None = None
) -> dict[str, int]:
    """Produce predictions and labels keyed by id (bad lines to their kind's topic).

    ``only`` ("prediction" or "label") publishes just that kind.
    """
    from kafka import KafkaProducer

    bad_kind = {raw: kind for (raw, _), kind in zip(stream.bad, stream.bad_kinds, strict=True)}
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=512 * 1024,
        compression_type="lz4",
        acks="all",
    )
    counts = {topics[0]: 0, topics[1]: 0}
    for i, raw in enumerate(stream.lines):
        kind = bad_kind.get(raw)
        key: bytes = f"bad-{i}".encode()
        if kind is None:
            obj = msgspec.json.decode(raw)
            kind, key = obj["kind"], obj["id"].encode()
        if only is not None and kind != only:
            continue
        topic = topics[0] if kind == "prediction" else topics[1]
        producer.send(topic, value=raw, key=key)
        counts[topic] += 1
    producer.flush()
    producer.close()
    return counts


def kafka_truth(stream: Stream, partitions: int) -> dict[str, Any]:
    """The truth when events are keyed by id into ``partitions`` (kafka-python's partitioner)."""
    from kafka.partitioner.default import murmur2

    return stream.truth_by(lambda id_: (murmur2(id_.encode()) & 0x7FFFFFFF) % partitions)


def kafka_config(
    spec: StreamSpec,
    tmp: Path,
    bootstrap: str,
    topics: tuple[str, str],
    name: str,
    checkpoint_url: str,
    client: str = "kafka-python",
) -> Path:
    """A driftd.toml for the stream's model that reads the given topics."""
    base = config_toml(spec, tmp / "unused.jsonl", tmp / "state")
    # Replace the generated file source and checkpoint with Kafka and the given store.
    lines = []
    skip = False
    for line in base.splitlines():
        if (
            line.startswith("[source]")
            or line.startswith("[checkpoint]")
            or line.startswith("[pipeline]")
        ):
            skip = True
            continue
        if skip and line.startswith("["):
            skip = False
        if not skip:
            lines.append(line)
    lines += [
        "[pipeline]",
        f'name = "{name}"',
        f'data_dir = "{tmp / "state"}"',
        "checkpoint_every_s = 0.5",
        "checkpoint_every_events = 5000",
        "poll_timeout_s = 0.2",
        "[checkpoint]",
        f'url = "{checkpoint_url}"',
        "[source]",
        'kind = "kafka"',
        "[source.kafka]",
        f'bootstrap_servers = "{bootstrap}"',
        f'predictions_topic = "{topics[0]}"',
        f'labels_topic = "{topics[1]}"',
        f'client = "{client}"',
        "session_timeout_ms = 2000",
        "heartbeat_interval_ms = 500",
    ]
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def driftd(*args: str, **kw: Any) -> subprocess.Popen[bytes]:
    """Start `driftd ARGS` as a subprocess of this Python (``env``: variables to add)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "driftd.cli", *args], env=env, **kw)


def status(config: Path) -> dict[str, Any]:
    """`driftd status --json` as a dict."""
    out = subprocess.run(
        [sys.executable, "-m", "driftd.cli", "status", "--config", str(config), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def wait_consumed(
    config: Path, total: int, timeout: float, procs: list[subprocess.Popen[bytes]] | None = None
) -> dict[str, Any]:
    """Poll the checkpoints until ``total`` events are consumed."""
    end = time.monotonic() + timeout
    st: dict[str, Any] = {}
    while time.monotonic() < end:
        st = status(config)
        if st["consumed"] >= total:
            return st
        for p in procs or []:
            if p.poll() not in (None, 0):
                raise AssertionError(f"driftd exited with {p.returncode}")
        time.sleep(0.5)
    raise AssertionError(f"only {st.get('consumed')} of {total} events consumed in {timeout}s")
