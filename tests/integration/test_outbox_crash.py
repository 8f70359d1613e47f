"""The outbox across real process deaths (SIGKILL), and the Kafka control-topic target.

A writer process commits registry changes and dies before any dispatcher ran; a dispatcher
process started later delivers every event exactly once to a loopback receiver. A dispatcher
killed mid-stream and restarted delivers every event, in order; a duplicate is only ever a
redelivery of the row in flight at the kill, with the same delivery id.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.registry.outbox import Dispatcher, KafkaControl, KafkaTarget
from tests.databases import fresh_database
from tests.integration.conftest import REPO
from tests.registry.test_outbox import Receiver

WRITER = """
import sys, time
from driftd.db import make_engine
from driftd.registry import Registry
reg = Registry(make_engine(sys.argv[1]), secret=b"s")
for i in range(int(sys.argv[2])):
    reg.register_version("m", f"s3://b/{i}", "a" * 64, 1, actor="alice")
reg.promote("m", 1, "staging", actor="alice")
print("committed", flush=True)
time.sleep(600)
"""

DISPATCHER = """
import sys, threading
from driftd.config import WebhookSettings
from driftd.db import make_engine
from driftd.registry.outbox import Dispatcher, WebhookTarget
hook = WebhookSettings(name="hook", url=sys.argv[2], secret="k", timeout_s=10)
Dispatcher(make_engine(sys.argv[1]), [WebhookTarget(hook)]).run(threading.Event(), 0.05)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    with fresh_database(request.param, tmp_path) as u:
        engine = make_engine(u)
        upgrade(engine)
        engine.dispose()
        yield u


def child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def outbox_ids(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = [f"hook-{i}" for i in conn.execute(sa.select(t.outbox.c.id).order_by("id")).scalars()]
    engine.dispose()
    return ids


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"dispatcher exited with {proc.returncode}"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def all_handled(url: str) -> bool:
    """True once the dispatcher recorded every outbox row as handled: nothing more is sent."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(t.outbox.c.id))).scalar()
            done = conn.execute(
                sa.select(t.outbox_cursors.c.last_id).where(t.outbox_cursors.c.target == "hook")
            ).scalar()
    finally:
        engine.dispose()
    return last is not None and done is not None and done >= last


def write_and_die(url: str, versions: int) -> list[str]:
    """Commit registry changes in a child, SIGKILL it, and return the expected delivery ids."""
    writer = child(WRITER, url, str(versions))
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "committed"
    finally:
        kill(writer)
    ids = outbox_ids(url)
    assert len(ids) >= versions + 1
    return ids


@pytest.mark.slow
def test_writer_killed_before_dispatch_delivered_exactly_once(url: str) -> None:
    expected = write_and_die(url, 5)
    receiver = Receiver()
    proc = child(DISPATCHER, url, receiver.url)
    try:
        wait_for(lambda: len(receiver.ok()) >= len(expected), proc)
        wait_for(lambda: all_handled(url), proc)  # then no further send can come
    finally:
        kill(proc)
        receiver.close()
    assert [d.id for d in receiver.ok()] == expected  # exactly once each, in order


@pytest.mark.slow
def test_dispatcher_killed_mid_stream(url: str) -> None:
    expected = write_and_die(url, 24)
    receiver = Receiver(delay_s=0.04)
    rng = random.Random(5)
    kills = 3
    try:
        for k in range(kills):
            proc = child(DISPATCHER, url, receiver.url)
            goal = len(receiver.unique()) + rng.randint(2, 6)
            try:
                wait_for(lambda g=goal: len(receiver.ok()) >= g, proc)  # type: ignore[misc]
                time.sleep(rng.uniform(0, 0.06))  # land anywhere, in or out of a send
            finally:
                kill(proc)
            assert len(receiver.unique()) < len(expected), f"kill {k} came too late"
        proc = child(DISPATCHER, url, receiver.url)
        try:
            wait_for(lambda: len(receiver.unique()) >= len(expected), proc)
            wait_for(lambda: all_handled(url), proc)
        finally:
            kill(proc)
    finally:
        receiver.close()
    got = receiver.ok()
    ids = [d.id for d in got]
    # De-duplicated by delivery id: every event exactly once, in outbox order.
    assert [d.id for d in receiver.unique()] == expected
    # A duplicate is the row in flight at a kill, resent first after the restart: at most one
    # per kill, with the same id and body as the delivery just before it.
    dups = [i for i in range(1, len(ids)) if ids[i] in ids[:i]]
    assert len(dups) <= kills
    for i in dups:
        assert ids[i] == ids[i - 1] and got[i].body == got[i - 1].body


@pytest.mark.kafka
def test_kafka_target(
    kafka_broker: str, topics: Callable[[int], tuple[str, str]], url: str
) -> None:
    from kafka import KafkaConsumer

    topic, _ = topics(1)
    reg = Registry(make_engine(url), secret=b"s")
    for i in range(3):
        reg.register_version("m" if i < 2 else "n", f"s3://b/{i}", "a" * 64, 1, actor="alice")
    reg.promote("m", 1, "staging", actor="alice")
    target = KafkaTarget(KafkaControl(kafka_broker, topic, events=["version_created"]))
    try:
        assert Dispatcher(reg.engine, [target]).run_once() == 3
    finally:
        target.close()
    with reg.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.outbox).where(t.outbox.c.event == "version_created").order_by("id")
        ).all()
    reg.engine.dispose()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    msgs = []
    for m in consumer:
        msgs.append(m)
        if len(msgs) == len(rows):
            break
    consumer.close()
    assert [(m.key, m.value) for m in msgs] == [
        (r.model.encode(), r.payload.encode()) for r in rows
    ]
    assert [dict(m.headers)["delivery"] for m in msgs] == [f"kafka-{r.id}".encode() for r in rows]
    assert {dict(m.headers)["event"] for m in msgs} == {b"version_created"}
