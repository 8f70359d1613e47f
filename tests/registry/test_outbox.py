"""The outbox dispatcher against a real HTTP receiver on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from driftd.config import WebhookSettings
from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.registry.audit import Witness
from driftd.registry.head import publish_head
from driftd.registry.outbox import Dispatcher, OutboxRow, WebhookTarget, status
from driftd.registry.webhook import verify

SECRET = "hook-secret"
SHA = "a" * 64


@dataclass
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["X-Driftd-Delivery"]

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A webhook receiver on loopback: records every request; fails the first ``fail_first``
    with 500; sleeps ``delay_s`` before answering (to widen the send window)."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.requests: list[Delivery] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers["Content-Length"])
                body = self.rfile.read(size)
                if len(body) < size:
                    return  # the sender died mid-request: it was never received, nor answered
                time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.requests.append(Delivery(dict(self.headers), body))
                    fail = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ok(self) -> list[Delivery]:
        """The requests answered 2xx."""
        with self.lock:
            return list(self.requests[self.fail_first :])

    def unique(self) -> list[Delivery]:
        """Accepted requests de-duplicated by delivery id, first occurrence kept."""
        seen: dict[str, Delivery] = {}
        for d in self.ok():
            seen.setdefault(d.id, d)
        return list(seen.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Clock:
    """A settable clock: backoff is tested without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def hook(url: str, name: str = "hook", **kw: Any) -> WebhookSettings:
    # These tests read driftd's own (legacy) body; tests/registry/test_webhook_standard.py
    # covers the default, Standard Webhooks with CloudEvents.
    return WebhookSettings(name=name, url=url, secret=SECRET, **{"format": "legacy", **kw})  # type: ignore[arg-type]


def register(reg: Registry, n: int, model: str = "m") -> None:
    for i in range(n):
        reg.register_version(model, f"s3://b/{model}/{i}", SHA, 1, actor="alice")


def outbox_rows(reg: Registry) -> list[sa.Row[Any]]:
    with reg.engine.connect() as conn:
        return list(conn.execute(sa.select(t.outbox).order_by(t.outbox.c.id)))


def cursor(reg: Registry, name: str = "hook") -> sa.Row[Any]:
    with reg.engine.connect() as conn:
        c = t.outbox_cursors
        return conn.execute(sa.select(c).where(c.c.target == name)).one()


def test_delivers_every_event_type_in_order(registry: Registry, receiver: Receiver) -> None:
    register(registry, 2)
    registry.promote("m", 1, "staging", actor="alice")
    registry.request_approval("m", 1, "production", actor="alice")
    registry.approve("m", 1, "production", actor="bob", role="approver")
    registry.promote("m", 1, "production", actor="bob")  # moves champion
    registry.promote("m", 2, "staging", actor="alice")
    registry.promote("m", 2, "canary", actor="alice")  # moves canary
    registry.rollback("m", actor="carol", reason="error rate")
    d = Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url))])
    rows = outbox_rows(registry)
    assert d.run_once() == len(rows)
    got = receiver.ok()
    assert [g.body.decode() for g in got] == [r.payload for r in rows]
    assert [g.id for g in got] == [f"hook-{r.id}" for r in rows]
    assert [g.headers["X-Driftd-Event"] for g in got] == [r.event for r in rows]
    assert {g.event["event"] for g in got} == {
        "version_created",
        "stage_changed",
        "alias_moved",
        "approval_requested",
        "approval_granted",
        "rollback",
    }
    assert all(g.headers["Content-Type"] == "application/json" for g in got)
    assert d.run_once() == 0 and len(receiver.requests) == len(rows)
    [st] = status(registry.engine)
    assert st["last_id"] == rows[-1].id and st["pending"] == 0 and st["dead"] == 0


def test_signature(registry: Registry, receiver: Receiver) -> None:
    register(registry, 1)
    Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url))]).run_once()
    [g] = receiver.ok()
    ts, sig = g.headers["X-Driftd-Timestamp"], g.headers["X-Driftd-Signature"]
    assert sig.startswith("sha256=") and abs(int(ts) - time.time()) < 60
    assert verify(SECRET.encode(), ts, g.body, sig)
    assert not verify(b"another-secret", ts, g.body, sig)
    assert not verify(SECRET.encode(), ts, g.body + b" ", sig)
    assert not verify(SECRET.encode(), str(int(ts) - 1), g.body, sig)
    # A captured request replayed later is refused even with its valid signature.
    assert not verify(SECRET.encode(), ts, g.body, sig, now=int(ts) + 3600)


def test_retries_with_backoff_then_success(registry: Registry) -> None:
    receiver = Receiver(fail_first=3)
    try:
        register(registry, 2)
        clock = Clock()
        settings = hook(receiver.url, backoff_s=2.0, max_backoff_s=5.0, max_attempts=10)
        d = Dispatcher(
            registry.engine, [WebhookTarget(settings)], clock=clock, rng=random.Random(7)
        )
        twin = random.Random(7)  # the same jitter draws as the dispatcher's
        for attempt, cap in [(1, 2.0), (2, 4.0), (3, 5.0)]:
            assert d.run_once() == 0
            c = cursor(registry)
            assert c.attempts == attempt and "HTTP 500" in c.last_error
            assert c.next_attempt_at == pytest.approx(clock.now + twin.uniform(0, cap))
            assert d.run_once() == 0  # not due yet: nothing is sent
            assert len(receiver.requests) == attempt
            clock.now = c.next_attempt_at
        assert d.run_once() == 2
        assert [g.id for g in receiver.ok()] == [f"hook-{r.id}" for r in outbox_rows(registry)]
        c = cursor(registry)
        assert (c.attempts, c.next_attempt_at, c.last_error) == (0, 0.0, "")
    finally:
        receiver.close()


def test_dead_letter_then_next_event(registry: Registry) -> None:
    receiver = Receiver(fail_first=3)
    try:
        register(registry, 2)
        clock = Clock()
        d = Dispatcher(
            registry.engine, [WebhookTarget(hook(receiver.url, max_attempts=3))], clock=clock
        )
        first, second = outbox_rows(registry)
        for _ in range(3):
            d.run_once()
            clock.now += 1000
        assert d.run_once() == 1
        assert [g.id for g in receiver.ok()] == [f"hook-{second.id}"]
        with registry.engine.connect() as conn:
            [dead] = conn.execute(sa.select(t.outbox_dead)).all()
        assert (dead.target, dead.outbox_id, dead.attempts) == ("hook", first.id, 3)
        assert "HTTP 500" in dead.error
        [st] = status(registry.engine)
        assert st["dead"] == 1 and st["pending"] == 0
    finally:
        receiver.close()


def test_event_filter(registry: Registry, receiver: Receiver) -> None:
    register(registry, 1)
    registry.promote("m", 1, "staging", actor="alice")
    register(registry, 1)
    d = Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url, events=["stage_changed"]))])
    assert d.run_once() == 1
    assert [g.headers["X-Driftd-Event"] for g in receiver.ok()] == ["stage_changed"]
    assert cursor(registry).last_id == outbox_rows(registry)[-1].id


def test_failing_target_does_not_block_another(registry: Registry, receiver: Receiver) -> None:
    register(registry, 3)
    dead = WebhookTarget(hook("http://127.0.0.1:9/nothing", name="down", timeout_s=1))
    d = Dispatcher(registry.engine, [dead, WebhookTarget(hook(receiver.url))])
    assert d.run_once() == 3
    assert len(receiver.ok()) == 3
    by_name = {s["target"]: s for s in status(registry.engine, ["later"])}
    assert by_name["down"]["attempts"] == 1 and by_name["down"]["pending"] == 3
    assert by_name["hook"]["pending"] == 0
    assert by_name["later"]["last_id"] == 0 and by_name["later"]["pending"] == 3


def test_racing_dispatchers_deliver_each_row_once(registry: Registry) -> None:
    receiver = Receiver(delay_s=0.01)
    try:
        register(registry, 12)
        total = len(outbox_rows(registry))
        dispatchers = [
            Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url))]) for _ in range(3)
        ]
        counts = [0, 0, 0]

        def work(i: int) -> None:
            end = time.monotonic() + 30
            while len(receiver.ok()) < total and time.monotonic() < end:
                counts[i] += dispatchers[i].run_once(limit=3)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ids = [g.id for g in receiver.ok()]
        assert ids == [f"hook-{r.id}" for r in outbox_rows(registry)]  # once each, in order
        assert sum(counts) == total
    finally:
        receiver.close()


class CrashAfterSend:
    """A target that crashes once after the receiver accepted a row, before the cursor moved:
    the one window in which a row is delivered twice."""

    def __init__(self, inner: WebhookTarget, crash_on: int) -> None:
        self.inner, self.crash_on = inner, crash_on
        self.name, self.policy = inner.name, inner.policy

    def wants(self, event: str) -> bool:
        return self.inner.wants(event)

    def send(self, row: OutboxRow) -> None:
        self.inner.send(row)
        if row.id == self.crash_on:
            self.crash_on = -1
            raise RuntimeError("crashed before the cursor commit")


def test_receiver_deduplicates_redelivery(registry: Registry, receiver: Receiver) -> None:
    register(registry, 3)
    rows = outbox_rows(registry)
    clock = Clock()
    target = CrashAfterSend(WebhookTarget(hook(receiver.url)), crash_on=rows[1].id)
    d = Dispatcher(registry.engine, [target], clock=clock)
    d.run_once()
    clock.now += 1000
    d.run_once()
    ids = [g.id for g in receiver.ok()]
    assert len(ids) == len(rows) + 1 and ids.count(f"hook-{rows[1].id}") == 2
    assert [g.id for g in receiver.unique()] == [f"hook-{r.id}" for r in rows]
    bodies = {g.id: g.body for g in receiver.ok()}
    assert all(bodies[g.id] == g.body for g in receiver.ok())  # a redelivery is identical


def test_run_stops_and_new_target_starts_from_the_beginning(
    registry: Registry, receiver: Receiver
) -> None:
    register(registry, 2)
    Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url, name="a"))]).run_once()
    register(registry, 1)
    stop = threading.Event()
    d = Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url, name="b"))])
    th = threading.Thread(target=d.run, args=(stop, 0.05))
    th.start()
    end = time.monotonic() + 20
    while len(receiver.ok()) < 2 + 3 and time.monotonic() < end:
        time.sleep(0.02)
    stop.set()
    th.join(10)
    assert not th.is_alive()
    assert sum(g.id.startswith("b-") for g in receiver.ok()) == 3  # the whole history


# -- the audit head as an external witness ------------------------------------------------------


def head_events(reg: Registry) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in outbox_rows(reg) if r.event == "audit.head"]


def test_publishes_the_audit_head_once_per_change(registry: Registry) -> None:
    """An ``audit.head`` event carries the head's sequence and hash; an unchanged head is not
    published again; what it carries verifies as a witness."""
    clock = Clock()
    assert publish_head(registry.engine, clock) is None  # an empty log has nothing to witness
    register(registry, 2)
    seen = publish_head(registry.engine, clock)
    result = registry.verify_audit()
    assert seen is not None and seen.seq == result.head_seq
    assert registry.verify_audit(expect_head=seen).ok
    assert publish_head(registry.engine, clock) is None
    register(registry, 1)
    later = publish_head(registry.engine, clock)
    assert later is not None and later.seq > seen.seq
    events = head_events(registry)
    assert [(e["seq"], e["hash"], e["witness"]) for e in events] == [
        (w.seq, w.hash, str(w)) for w in (seen, later)
    ]
    assert events[0]["ts"] == clock.now and events[0]["actor"] == "driftd"
    assert registry.verify_audit(expect_head=later).ok


def test_a_head_that_moved_back_is_not_published(registry: Registry) -> None:
    register(registry, 2)
    seen = publish_head(registry.engine, Clock())
    assert seen is not None
    with registry.engine.begin() as conn:
        conn.execute(t.audit.delete().where(t.audit.c.seq == seen.seq))
        prev = conn.execute(sa.select(t.audit.c.hash).where(t.audit.c.seq == seen.seq - 1))
        conn.execute(t.audit_head.update().values(seq=seen.seq - 1, hash=prev.scalar_one()))
    assert publish_head(registry.engine, Clock()) is None
    assert len(head_events(registry)) == 1


def test_run_publishes_the_head_periodically(registry: Registry, receiver: Receiver) -> None:
    register(registry, 1)
    stop = threading.Event()
    d = Dispatcher(registry.engine, [WebhookTarget(hook(receiver.url))], witness_every_s=0.05)
    th = threading.Thread(target=d.run, args=(stop, 0.05))
    th.start()

    def heads() -> list[dict[str, Any]]:
        return [g.event for g in receiver.ok() if g.event["event"] == "audit.head"]

    try:
        end = time.monotonic() + 30
        while not heads() and time.monotonic() < end:
            time.sleep(0.02)
        register(registry, 1)  # the head moves: the next period publishes it
        want = registry.verify_audit().head_seq
        while (not heads() or heads()[-1]["seq"] != want) and time.monotonic() < end:
            time.sleep(0.02)
    finally:
        stop.set()
        th.join(10)
    assert not th.is_alive()
    seqs = [h["seq"] for h in heads()]  # one event per head seen, each head once
    assert len(seqs) >= 2 and seqs == sorted(set(seqs)) and seqs[-1] == want, seqs
    assert registry.verify_audit(expect_head=Witness.parse(heads()[-1]["witness"])).ok
