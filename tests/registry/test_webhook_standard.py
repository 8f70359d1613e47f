"""Webhooks as standard events: Standard Webhooks signatures checked with the ``standardwebhooks``
library, CloudEvents bodies parsed with the CloudEvents SDK, against a real loopback receiver;
and a webhook added later starts from now unless ``replay`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from cloudevents.core.bindings.http import HTTPMessage
from cloudevents.core.bindings.http import from_http as core_from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_http, from_json
from standardwebhooks import Webhook, WebhookVerificationError

from driftd.config import WebhookSettings
from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.registry.cloudevents import event_type, rfc3339
from driftd.registry.outbox import Dispatcher, WebhookTarget, dispatcher_from_settings, status
from tests.registry.test_outbox import Clock, CrashAfterSend, Receiver, register

SECRET = "whsec_" + base64.b64encode(b"a 24-byte key for tests!").decode()


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


def standard(url: str, name: str = "hook", **kw: Any) -> WebhookSettings:
    return WebhookSettings(name=name, url=url, secret=SECRET, **kw)  # type: ignore[arg-type]


def rows(reg: Registry) -> list[sa.Row[Any]]:
    with reg.engine.connect() as conn:
        return list(conn.execute(sa.select(t.outbox).order_by(t.outbox.c.id)))


def test_signed_per_standard_webhooks_and_parsed_as_cloudevents(
    registry: Registry, receiver: Receiver
) -> None:
    register(registry, 1)
    registry.promote("m", 1, "staging", actor="alice")
    d = Dispatcher(registry.engine, [WebhookTarget(standard(receiver.url, source="driftd://p1"))])
    outbox = rows(registry)
    assert d.run_once() == len(outbox)
    got = receiver.ok()
    assert len(got) == len(outbox)
    wh = Webhook(SECRET)
    for g, row in zip(got, outbox, strict=True):
        h = {k.lower(): v for k, v in g.headers.items()}
        assert h["webhook-id"] == f"hook-{row.id}"
        assert abs(int(h["webhook-timestamp"]) - time.time()) < 120
        assert h["webhook-signature"].startswith("v1,")
        assert wh.verify(g.body, h)["data"] == json.loads(row.payload)  # the library agrees
        assert h["content-type"].startswith("application/cloudevents+json")

        ev = from_http(h, g.body)  # the CloudEvents SDK (v1 API) parses the structured body
        assert ev["specversion"] == "1.0" and ev["id"] == h["webhook-id"]
        assert ev["source"] == "driftd://p1/models/m"
        assert ev["type"] == event_type(row.event) and ev["type"].startswith("io.driftd.")
        assert ev["datacontenttype"] == "application/json"
        assert ev.data == json.loads(row.payload)
        assert from_json(g.body)["id"] == ev["id"]
        core = core_from_http(HTTPMessage(h, g.body), JSONFormat())  # and the 2.x core API
        assert core.get_id() == ev["id"] and core.get_type() == ev["type"]
        assert core.get_time() == datetime.fromisoformat(rfc3339(row.created_at))
        assert core.get_data() == json.loads(row.payload)
    types = [json.loads(g.body)["type"] for g in got]
    assert "io.driftd.version.created" in types and "io.driftd.stage.changed" in types
    created = json.loads(got[0].body)
    assert created["subject"] == "1" and created["time"].endswith("Z")


def test_tampering_and_other_secrets_fail_verification(
    registry: Registry, receiver: Receiver
) -> None:
    register(registry, 1)
    Dispatcher(registry.engine, [WebhookTarget(standard(receiver.url))]).run_once()
    [g] = receiver.ok()
    h = {k.lower(): v for k, v in g.headers.items()}
    Webhook(SECRET).verify(g.body, h)
    tampered = g.body.replace(b'"version":1', b'"version":2')
    assert tampered != g.body
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, h)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another key").decode()).verify(g.body, h)
    with pytest.raises(WebhookVerificationError):  # the id is signed too
        Webhook(SECRET).verify(g.body, {**h, "webhook-id": "hook-999"})
    with pytest.raises(WebhookVerificationError):  # and the timestamp
        Webhook(SECRET).verify(g.body, {**h, "webhook-timestamp": str(int(time.time()) - 1)})


def test_a_plain_secret_signs_with_its_bytes(registry: Registry, receiver: Receiver) -> None:
    register(registry, 1)
    plain = WebhookSettings(name="hook", url=receiver.url, secret="s3cret")  # type: ignore[arg-type]
    Dispatcher(registry.engine, [WebhookTarget(plain)]).run_once()
    [g] = receiver.ok()
    Webhook(b"s3cret").verify(g.body, dict(g.headers))


def test_a_malformed_standard_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        WebhookSettings(name="x", url="http://h", secret="whsec_")  # type: ignore[arg-type]


def test_a_redelivery_keeps_its_id_and_body(registry: Registry, receiver: Receiver) -> None:
    register(registry, 2)
    first, second = rows(registry)
    clock = Clock()
    target = CrashAfterSend(WebhookTarget(standard(receiver.url)), crash_on=first.id)
    d = Dispatcher(registry.engine, [target], clock=clock)
    d.run_once()
    clock.now += 1000
    d.run_once()
    got = receiver.ok()
    ids = [g.headers["webhook-id"] for g in got]
    assert ids == [f"hook-{first.id}", f"hook-{first.id}", f"hook-{second.id}"]
    assert got[0].body == got[1].body  # byte-identical, so the CloudEvent id is the same too
    for g in got:
        Webhook(SECRET).verify(g.body, dict(g.headers))


def test_legacy_format_is_unchanged(registry: Registry, receiver: Receiver) -> None:
    register(registry, 1)
    Dispatcher(registry.engine, [WebhookTarget(standard(receiver.url, format="legacy"))]).run_once()
    [g] = receiver.ok()
    [row] = rows(registry)
    assert g.body.decode() == row.payload and g.headers["X-Driftd-Signature"].startswith("sha256=")
    assert "webhook-signature" not in {k.lower() for k in g.headers}


def _deliver_until(receiver: Receiver, d: Dispatcher, n: int) -> None:
    """Run ``d`` in its own thread until the receiver holds ``n`` requests (or 20 s pass)."""
    stop = threading.Event()
    th = threading.Thread(target=d.run, args=(stop, 0.02))
    th.start()
    end = time.monotonic() + 20
    while len(receiver.ok()) < n and time.monotonic() < end:
        time.sleep(0.01)
    stop.set()
    th.join(10)
    assert not th.is_alive()


def test_a_new_webhook_starts_from_now(registry: Registry, receiver: Receiver) -> None:
    register(registry, 3)  # history before the webhook was configured
    d = dispatcher_from_settings(registry.engine, [standard(receiver.url, name="late")])
    assert d.run_once() == 0 and receiver.ok() == []
    [st] = status(registry.engine)
    assert st["target"] == "late" and st["last_id"] == rows(registry)[-1].id and st["pending"] == 0
    register(registry, 1)  # a change after it started is delivered
    _deliver_until(receiver, d, 1)
    [g] = receiver.ok()
    assert g.headers["webhook-id"] == f"late-{rows(registry)[-1].id}"
    # Its cursor now exists: a restart (a new dispatcher) goes on from there, skipping nothing.
    register(registry, 2)
    d2 = dispatcher_from_settings(registry.engine, [standard(receiver.url, name="late")])
    assert d2.run_once() == 2
    assert [g.headers["webhook-id"] for g in receiver.ok()] == [
        f"late-{r.id}" for r in rows(registry)[-3:]
    ]


def test_replay_delivers_the_history(registry: Registry, receiver: Receiver) -> None:
    register(registry, 3)
    hooks = [standard(receiver.url, name="replayer", replay=True)]
    d = dispatcher_from_settings(registry.engine, hooks)
    assert d.run_once() == 3
    assert [g.headers["webhook-id"] for g in receiver.ok()] == [
        f"replayer-{r.id}" for r in rows(registry)
    ]
