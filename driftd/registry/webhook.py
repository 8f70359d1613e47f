"""Signed webhook delivery of outbox rows, and the check a receiver runs on a delivery.

A delivery is ``POST <url>`` with the outbox row's canonical JSON as the body and headers:

- ``X-Driftd-Event``: the event name (``version_created``, ``alias_moved``, ...);
- ``X-Driftd-Delivery``: ``<target>-<outbox id>``, the same on every attempt and redelivery,
  so a receiver de-duplicates on it (see ``driftd.registry.outbox`` for when a duplicate can
  happen);
- ``X-Driftd-Timestamp``: unix seconds when this attempt was signed;
- ``X-Driftd-Signature``: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` under the
  webhook's secret (absent when the webhook has no secret).

The timestamp is inside the signed text (as Stripe does) so that a captured request cannot be
replayed later: the receiver rejects a timestamp older than a few minutes, and an attacker
cannot move it without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from driftd.config import WebhookSettings

EVENT_HEADER = "X-Driftd-Event"
DELIVERY_HEADER = "X-Driftd-Delivery"
TIMESTAMP_HEADER = "X-Driftd-Timestamp"
SIGNATURE_HEADER = "X-Driftd-Signature"


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
        self._secret = settings.secret.get_secret_value().encode() if settings.secret else None
        self._client = client or httpx.Client(timeout=settings.timeout_s)
        self._clock = clock

    def wants(self, event: str) -> bool:
        """Whether the webhook subscribed to ``event`` (no filter: every event)."""
        return not self._events or event in self._events

    def headers(self, row: OutboxRow, body: bytes) -> dict[str, str]:
        """The delivery headers for ``row``, signed at the current clock."""
        ts = str(int(self._clock()))
        h = {
            "Content-Type": "application/json",
            EVENT_HEADER: row.event,
            DELIVERY_HEADER: delivery_id(self.name, row.id),
            TIMESTAMP_HEADER: ts,
        }
        if self._secret:
            h[SIGNATURE_HEADER] = sign(self._secret, ts, body)
        return h

    def send(self, row: OutboxRow) -> None:
        """Deliver ``row``; raise DeliveryError unless the receiver answered 2xx."""
        body = row.payload.encode()
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

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
