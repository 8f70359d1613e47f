"""Where the reference server's events go, and where its Deployment events come from.

Out: ``JsonlSink`` appends one JSON event per line (with its ``kind`` tag, so predictions and
labels can share a file that ``driftd replay`` or a following file source reads), and
``KafkaSink`` produces predictions and labels to their topics keyed by the prediction id: the
default partitioner hashes the key, so with equal partition counts a prediction and its label
land in the same partition number, which is how driftd's Kafka source joins them.

In: ``ControlFollower`` reads the Kafka control topic from the beginning (no consumer group),
so a restarted server re-applies every deployment in order and ends on the last weights. A
message counts as a deployment when it decodes as a ``Deployment`` event or when it is a
registry outbox JSON object with ``"event": "deployment"`` and a ``weights`` mapping; anything
else (other registry events, other models) is skipped. In process, call
``ModelServer.apply`` directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from driftd.contracts.events import Deployment, Label, Prediction, encode

log = logging.getLogger("driftd.sim")


class JsonlSink:
    """Appends events to a JSON-lines file and flushes after each batch."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")

    def write(self, predictions: Sequence[Prediction], labels: Sequence[Label]) -> None:
        """Append the batch (predictions first) and flush it to the OS."""
        events: list[Prediction | Label] = [*predictions, *labels]
        if events:
            self._fh.write(b"".join(encode(e) + b"\n" for e in events))
            self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


class KafkaSink:
    """Produces predictions and labels to their topics, key = prediction id."""

    def __init__(
        self,
        bootstrap: str,
        predictions_topic: str,
        labels_topic: str,
        producer: Any = None,
        **options: Any,
    ) -> None:
        self.predictions_topic = predictions_topic
        self.labels_topic = labels_topic
        if producer is None:
            from kafka import KafkaProducer

            producer = KafkaProducer(
                bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=20, **options
            )
        self.producer = producer

    def write(self, predictions: Sequence[Prediction], labels: Sequence[Label]) -> None:
        """Send the batch (asynchronously; ``flush`` waits for the acks)."""
        for p in predictions:
            self.producer.send(self.predictions_topic, key=p.id.encode(), value=encode(p))
        for lab in labels:
            self.producer.send(self.labels_topic, key=lab.id.encode(), value=encode(lab))

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every sent event is acknowledged."""
        self.producer.flush(timeout_s)

    def close(self) -> None:
        """Flush and close the producer."""
        self.producer.flush()
        self.producer.close()


def parse_control(raw: bytes | None, model: str) -> Deployment | None:
    """The Deployment a control-topic message carries for ``model``, else None."""
    if not raw:
        return None
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        log.warning("control message is not JSON; skipped")
        return None
    if not isinstance(obj, dict) or obj.get("model") != model:
        return None
    try:
        if "event" not in obj:
            if obj.get("kind", "deployment") != "deployment":
                return None
            return msgspec.convert(obj, Deployment)
        if obj["event"] != "deployment" or not isinstance(obj.get("weights"), dict):
            return None
        return Deployment(
            model=model,
            ts=float(obj.get("ts") or 0.0),
            weights={str(k): float(v) for k, v in obj["weights"].items()},
            reason=str(obj.get("reason", "")),
            decision_id=str(obj.get("decision_id") or obj.get("id") or "outbox"),
        )
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        log.warning("control deployment for %s is invalid; skipped: %s", model, exc)
        return None


class ControlFollower:
    """Yields the Deployment events for one model from the control topic, oldest first."""

    def __init__(self, bootstrap: str, topic: str, model: str, **options: Any) -> None:
        from kafka import KafkaConsumer

        self.topic, self.model = topic, model
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **options,
        )
        self._assigned = False
        self._next_check = 0.0

    def _assign(self) -> bool:
        """Take every partition of the topic from offset 0 (once it exists)."""
        if self._assigned or time.monotonic() < self._next_check:
            return self._assigned
        from kafka import TopicPartition

        parts = self.consumer.partitions_for_topic(self.topic)
        if not parts:
            self._next_check = time.monotonic() + 2.0  # the topic may be created later
            return False
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self._assigned = True
        return True

    def poll(self, timeout_s: float = 0.0) -> list[Deployment]:
        """The deployments for the model that arrived since the last poll, in offset order."""
        if not self._assign():
            return []
        batches = self.consumer.poll(timeout_ms=int(timeout_s * 1000))
        records = sorted(
            (r for recs in batches.values() for r in recs), key=lambda r: (r.timestamp, r.offset)
        )
        out = []
        for r in records:
            d = parse_control(r.value, self.model)
            if d is not None:
                out.append(d)
        return out

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
