"""Crash safety, for real: `driftd run` is SIGKILLed at random moments and restarted.

After the last restart has consumed everything, every count equals the generator's ground
truth exactly: no event lost, none counted twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.db import make_engine
from driftd.sim.synth import StreamSpec, config_toml, generate
from tests.integration.streams import (
    driftd,
    kafka_config,
    kafka_truth,
    publish,
    status,
    wait_consumed,
)

pytestmark = pytest.mark.slow

# ~200,000 events: 100k predictions, ~90k labels, duplicates and malformed lines.
SPEC = StreamSpec(events=100_000, seed=21, malformed_rate=0.002, duplicate_rate=0.01)
KILLS = 5


def _progress(url: str, name: str) -> int:
    """Events (Kafka offsets) or bytes (files) covered by the saved checkpoints."""
    store = SqlCheckpointStore(make_engine(url))
    try:
        return sum(
            v
            for cp in store.info(name)
            for k, v in cp["offsets"].items()
            if "#" not in k and not k.startswith("dlq:")  # bytes, not lines or file identity
        )
    except sa.exc.DBAPIError:
        return 0  # the daemon has not created its tables yet
    finally:
        store.close()


def _kill_and_restart(
    cfg: Path,
    tmp: Path,
    url: str,
    name: str,
    units: int,
    seed: int,
    done: Callable[[subprocess.Popen[bytes]], None],
) -> None:
    """Kill driftd once in each of the first KILLS sixths of the stream, at a random point."""
    rng = random.Random(seed)
    log = (tmp / "driftd.log").open("ab")
    at_kill = []
    for k in range(KILLS):
        target = units * (k + rng.random()) / (KILLS + 1)
        proc = driftd("run", "--config", str(cfg), stdout=log, stderr=log)
        end = time.monotonic() + 120
        while _progress(url, name) < target:
            if proc.poll() is not None:
                raise AssertionError(f"driftd exited with {proc.returncode} before the kill")
            if time.monotonic() > end:
                raise AssertionError(f"no progress past {target} in 120 s")
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))  # land anywhere: mid-batch, mid-checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill.append(_progress(url, name))
    proc = driftd("run", "--config", str(cfg), stdout=log, stderr=log)
    try:
        done(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert min(at_kill) > 0 and max(at_kill) < units, at_kill


def _check(cfg: Path, stream_truth: dict, total: int) -> dict:
    final = status(cfg)
    assert final["consumed"] == total
    assert final["models"] == stream_truth["models"]
    assert final["dead_lettered"] == stream_truth["dead_lettered"]
    return final


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("store", "client"),
    [
        ("sqlite", "kafka-python"),
        ("sqlite", "confluent"),
        pytest.param("postgres", "kafka-python", marks=pytest.mark.postgres),
    ],
)
def test_kill9_kafka(kafka_broker, topics, tmp_path, unique_name, store, client, request):
    url = f"sqlite:///{tmp_path}/cp.db" if store == "sqlite" else request.getfixturevalue("pg_url")
    stream = generate(SPEC)
    names = topics(3)
    counts = publish(stream, kafka_broker, names)
    cfg = kafka_config(SPEC, tmp_path, kafka_broker, names, unique_name, url, client=client)
    total = sum(counts.values())

    def finish(proc: subprocess.Popen[bytes]) -> None:
        wait_consumed(cfg, total, 300, [proc])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    _kill_and_restart(cfg, tmp_path, url, unique_name, total, seed=len(store), done=finish)
    _check(cfg, kafka_truth(stream, 3), total)


def test_kill9_file(tmp_path):
    stream = generate(SPEC)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(stream.lines) + b"\n")
    cfg = tmp_path / "driftd.toml"
    text = config_toml(SPEC, events, tmp_path / "state")
    cfg.write_text(
        text.replace(
            "[pipeline]\n", "[pipeline]\ncheckpoint_every_events = 5000\nbatch_size = 1000\n"
        )
    )
    url = f"sqlite:///{tmp_path}/state/state.db"
    _kill_and_restart(
        cfg, tmp_path, url, "demo", events.stat().st_size, seed=7, done=lambda proc: proc.wait(300)
    )
    _check(cfg, stream.truth, len(stream.lines))
    # The dead-letter file is exactly-once too: cut back to its checkpointed size on restart.
    dlq = (tmp_path / "state" / "events.dlq.jsonl").read_text().splitlines()
    assert len(dlq) == stream.truth["dead_lettered"]["total"]
    # Incidents too: the same incidents, each alarm counted once, as a run never killed.
    clean = tmp_path / "clean.toml"
    clean.write_text(cfg.read_text().replace(str(tmp_path / "state"), str(tmp_path / "clean")))
    assert driftd("run", "--config", str(clean)).wait(300) == 0
    killed, calm = (_incidents(f"sqlite:///{tmp_path}/{d}/state.db") for d in ("state", "clean"))
    assert killed == calm and sum(n for *_, n in calm) >= 2, (killed, calm)


def _incidents(url: str) -> list[tuple[str, str, str, int]]:
    """(id, stream, state, alarms) of every incident in the database at ``url``."""
    from driftd.incidents.lifecycle import Policy
    from driftd.incidents.store import IncidentStore
    from driftd.registry import Registry

    engine = make_engine(url)
    try:
        found = IncidentStore(Registry(engine), Policy()).list(limit=10_000)
        return sorted((i.id, i.stream, i.state, i.alarms) for i in found)
    finally:
        engine.dispose()
