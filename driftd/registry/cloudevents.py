"""Outbox rows as CloudEvents 1.0 in structured JSON mode: the webhook body driftd sends.

Pure functions, no I/O: ``structured`` turns one outbox row into the bytes of a CloudEvent whose
``data`` is the row's payload (the event as driftd always wrote it), so a receiver using any
CloudEvents SDK (``cloudevents.http.from_http``) gets the envelope and the old payload inside.
The bytes depend only on the row and the target, so a redelivery is byte-identical.

Mapping: ``type`` is ``io.driftd.`` plus the event name with ``_`` read as ``.``
(``version_created`` → ``io.driftd.version.created``, ``incident.opened`` →
``io.driftd.incident.opened``); ``source`` is ``<base>/models/<model>`` (just ``<base>`` for
events of no model, such as ``audit.head``); ``subject`` is the version number when the event
names one; ``time`` is when the change committed (RFC 3339, UTC).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TYPE_PREFIX = "io.driftd."


def event_type(event: str) -> str:
    """The CloudEvents ``type`` of an outbox event name."""
    return TYPE_PREFIX + event.replace("_", ".")


def event_source(base: str, model: str) -> str:
    """The CloudEvents ``source``: the model's URI under ``base`` (``base`` alone without one)."""
    return f"{base.rstrip('/')}/models/{model}" if model else base


def rfc3339(ts: float) -> str:
    """``ts`` (unix seconds) as an RFC 3339 UTC timestamp with microseconds."""
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def envelope(
    event_id: str, base: str, event: str, model: str, created_at: float, data: Any
) -> dict[str, Any]:
    """The CloudEvent attributes and ``data`` for one outbox event."""
    ce: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": event_source(base, model),
        "type": event_type(event),
        "time": rfc3339(created_at),
        "datacontenttype": "application/json",
    }
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool):
        ce["subject"] = str(version)
    ce["data"] = data
    return ce


def structured(
    event_id: str, base: str, event: str, model: str, created_at: float, payload: str
) -> bytes:
    """The structured-mode body (UTF-8 JSON, keys sorted) for an outbox row's ``payload``."""
    ce = envelope(event_id, base, event, model, created_at, json.loads(payload))
    return json.dumps(ce, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
