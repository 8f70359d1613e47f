"""Signed webhook delivery of outbox rows, and the check a receiver runs on a delivery.

A delivery is ``POST <url>``. In the default ``cloudevents`` format it follows the Standard
Webhooks specification (https://www.standardwebhooks.com):

- the body is a CloudEvent 1.0 in structured JSON mode (``driftd.registry.cloudevents``) whose
  ``data`` is the outbox row's payload, ``Content-Type: application/cloudevents+json``;
- ``webhook-id``: ``<target>-<outbox id>``, also the CloudEvent's ``id``; the same on every
  attempt and redelivery, so a receiver de-duplicates on it (see ``driftd.registry.outbox``
  for when a duplicate can happen);
- ``webhook-timestamp``: unix seconds when this attempt was signed;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` under the
  webhook's secret (absent when the webhook has no secret); a ``whsec_<base64>`` secret is
  decoded as the spec says, any other secret is used as its UTF-8 bytes. A receiver checks it
  with ``standardwebhooks.Webhook(secret).verify(body, headers)``.

``X-Driftd-Event`` and ``X-Driftd-Delivery`` are sent too, for routing without parsing.

The ``legacy`` format is driftd's first one: the row's canonical JSON as the body, and
``X-Driftd-Event``, ``X-Driftd-Delivery``, ``X-Driftd-Timestamp`` and ``X-Driftd-Signature``
(``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``), checked by ``verify`` below.

Both formats sign the timestamp (as Stripe does) so that a captured request cannot be
replayed later: the receiver rejects a timestamp older than a few minutes, and an attacker
cannot move it without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from driftd.config import WebhookSettings
from driftd.registry import cloudevents

EVENT_HEADER = "X-Driftd-Event"
DELIVERY_HEADER = "X-Driftd-Delivery"
TIMESTAMP_HEADER = "X-Driftd-Timestamp"
SIGNATURE_HEADER = "X-Driftd-Signature"
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"


class DeliveryError(Exception):
    """A target did not accept a row (transport error or a non-2xx answer); it is retried."""


@dataclass(frozen=True)
class OutboxRow:
    """One registry_outbox row as a target sees it; ``payload`` is canonical JSON text."""

    id: int
    created_at: float
    event: str
    model: str
    payload: str


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a target is retried before a row is dead-lettered."""

    max_attempts: int = 8
    backoff_s: float = 1.0
    max_backoff_s: float = 300.0


def delivery_id(target: str, row_id: int) -> str:
    """The delivery id of ``row_id`` to ``target``: deterministic, so redeliveries share it."""
    return f"{target}-{row_id}"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Driftd-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def standard_signer(secret: str) -> Webhook:
    """The Standard Webhooks signer for a configured secret (``whsec_<base64>`` or raw text)."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether a delivery is authentic and fresh (what a receiver should check first)."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookTarget:
    """POSTs each wanted outbox row to one webhook URL, signed with the webhook's secret."""

    def __init__(
        self,
        settings: WebhookSettings,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.policy = RetryPolicy(settings.max_attempts, settings.backoff_s, settings.max_backoff_s)
        self._events = frozenset(settings.events)
        raw = settings.secret.get_secret_value() if settings.secret else None
        self._secret = raw.encode() if raw else None
        self._signer = standard_signer(raw) if raw else None
        self._client = client or httpx.Client(timeout=settings.timeout_s)
        self._clock = clock

    def wants(self, event: str) -> bool:
        """Whether the webhook subscribed to ``event`` (no filter: every event)."""
        return not self._events or event in self._events

    def body(self, row: OutboxRow) -> bytes:
        """What is POSTed for ``row``: the same bytes on every attempt."""
        if self.settings.format == "legacy":
            return row.payload.encode()
        return cloudevents.structured(
            delivery_id(self.name, row.id),
            self.settings.source,
            row.event,
            row.model,
            row.created_at,
            row.payload,
        )

    def headers(self, row: OutboxRow, body: bytes) -> dict[str, str]:
        """The delivery headers for ``row``, signed at the current clock."""
        now = int(self._clock())
        ts = str(now)
        msg_id = delivery_id(self.name, row.id)
        h = {EVENT_HEADER: row.event, DELIVERY_HEADER: msg_id}
        if self.settings.format == "legacy":
            h |= {"Content-Type": "application/json", TIMESTAMP_HEADER: ts}
            if self._secret:
                h[SIGNATURE_HEADER] = sign(self._secret, ts, body)
            return h
        h |= {"Content-Type": cloudevents.CONTENT_TYPE, WEBHOOK_ID: msg_id, WEBHOOK_TIMESTAMP: ts}
        if self._signer is not None:
            at = datetime.fromtimestamp(now, tz=UTC)
            h[WEBHOOK_SIGNATURE] = self._signer.sign(msg_id, at, body)
        return h

    def send(self, row: OutboxRow) -> None:
        """Deliver ``row``; raise DeliveryError unless the receiver answered 2xx."""
        body = self.body(row)
        try:
            r = self._client.post(
                self.settings.url,
                content=body,
                headers=self.headers(row, body),
                timeout=self.settings.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"HTTP {r.status_code}: {r.text[:200]}")

    @property
    def replay(self) -> bool:
        """Whether a new cursor for this webhook starts at the first event (else the newest)."""
        return self.settings.replay

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
