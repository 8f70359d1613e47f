"""The Kafka control-topic target of the outbox: each row published with the model as key (per
model order), ``acks=all``, and the event and delivery id as headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from driftd.registry.webhook import DeliveryError, OutboxRow, RetryPolicy, delivery_id


@dataclass(frozen=True)
class KafkaControl:
    """Where the control-topic target publishes (until the config grows such a section)."""

    bootstrap_servers: str
    topic: str
    name: str = "kafka"
    events: Sequence[str] = ()
    policy: RetryPolicy = field(default_factory=RetryPolicy)


class KafkaTarget:
    """Publishes rows to a Kafka topic: key = model (per-model order), acks=all, headers
    ``event`` and ``delivery`` (the delivery id, for consumers to de-duplicate)."""

    def __init__(self, control: KafkaControl, producer: Any = None, timeout_s: float = 10.0):
        self.name = control.name
        self.policy = control.policy
        self.topic = control.topic
        self._events = frozenset(control.events)
        self._timeout = timeout_s
        if producer is None:
            from kafka import KafkaProducer

            producer = KafkaProducer(bootstrap_servers=control.bootstrap_servers, acks="all")
        self._producer = producer

    def wants(self, event: str) -> bool:
        """Whether ``event`` passes the filter (none: every event)."""
        return not self._events or event in self._events

    def send(self, row: OutboxRow) -> None:
        """Publish and wait for the broker's ack (a flush per row: the cursor commits per row)."""
        try:
            future = self._producer.send(
                self.topic,
                key=row.model.encode(),
                value=row.payload.encode(),
                headers=[
                    ("event", row.event.encode()),
                    ("delivery", delivery_id(self.name, row.id).encode()),
                ],
            )
            self._producer.flush(self._timeout)
            future.get(timeout=self._timeout)
        except Exception as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(self._timeout)
