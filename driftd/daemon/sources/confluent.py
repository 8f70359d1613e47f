"""Kafka source and dead-letter sink on confluent-kafka (librdkafka), for throughput.

Same contract as the kafka-python backend. librdkafka wants the starting offsets handed to
``assign()`` inside the on_assign callback, so ``seek`` records them while the owner restores
the partitions, and the callback then assigns with those offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from driftd.config import KafkaSettings
from driftd.contracts.events import DeadLetter
from driftd.daemon.abc import Lag, Offsets, PartitionOwner, RawChunk
from driftd.daemon.sources.topics import offset_key, topic_streams
from driftd.errors import SourceError

log = logging.getLogger("driftd.kafka")


def _conf(s: KafkaSettings) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": s.bootstrap_servers,
        "security.protocol": s.security_protocol,
    }
    if s.sasl_mechanism:
        conf["sasl.mechanism"] = s.sasl_mechanism
        conf["sasl.username"] = s.sasl_username
        conf["sasl.password"] = s.sasl_password.get_secret_value() if s.sasl_password else None
    return conf


class ConfluentSource:
    """Consumes the predictions and labels topics with librdkafka."""

    def __init__(self, settings: KafkaSettings, group_id: str) -> None:
        self.settings = settings
        self.topics = (settings.predictions_topic, settings.labels_topic)
        self._streams = topic_streams(settings)
        self.owner: PartitionOwner | None = None
        self._seek: dict[tuple[str, int], int] = {}
        self.consumer = Consumer(
            {
                **_conf(settings),
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": settings.auto_offset_reset,
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": settings.heartbeat_interval_ms,
                "fetch.min.bytes": settings.fetch_min_bytes,
                "fetch.wait.max.ms": settings.fetch_max_wait_ms,
                "max.partition.fetch.bytes": settings.max_partition_fetch_bytes,
                "partition.assignment.strategy": "range",
            }
        )

    @property
    def exhausted(self) -> bool:
        """A topic never ends."""
        return False

    def partition_ids(self) -> list[int]:
        """The predictions topic's partitions (none while the metadata cannot be read): the
        leader waits for a report from each."""
        try:
            meta = self.consumer.list_topics(self.topics[0], timeout=5)
        except Exception:  # the client's KafkaException: the broker is unreachable now
            return []
        topic = meta.topics.get(self.topics[0])
        return sorted(topic.partitions) if topic is not None and topic.partitions else []

    def bind(self, owner: PartitionOwner) -> None:
        """Subscribe; rebalances call ``owner.assign`` / ``owner.revoke`` from poll()."""
        self.owner = owner
        self.consumer.subscribe(
            list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def _on_assign(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        parts = sorted({tp.partition for tp in tps})
        self._seek.clear()
        if self.owner is not None:  # even none: the owner starts its lease then
            self.owner.assign(parts)
        for tp in tps:
            off = self._seek.get((tp.topic, tp.partition))
            if off is not None:
                tp.offset = off
        consumer.assign(tps)

    def _on_revoke(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        parts = sorted({tp.partition for tp in tps})
        if self.owner is not None and parts:
            self.owner.revoke(parts)
        consumer.unassign()

    def poll(self, timeout_s: float, max_records: int) -> list[RawChunk]:
        """One consume() call, as one chunk per topic partition."""
        try:
            msgs = self.consumer.consume(num_messages=max_records, timeout=timeout_s)
        except KafkaException as exc:
            raise SourceError(f"polling Kafka failed: {exc}") from exc
        groups: dict[tuple[str, int], tuple[list[bytes], list[int]]] = {}
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise SourceError(f"Kafka error: {err}")
                log.warning("Kafka consumer error: %s", err)
                continue
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            if topic is None or partition is None or offset is None:
                continue  # not a record (an event without a position)
            raws, offs = groups.setdefault((topic, partition), ([], []))
            value = m.value()
            raws.append(value if value is not None else b"")
            offs.append(offset)
        return [
            RawChunk(
                partition=p,
                stream=self._streams[t],
                source=t,
                raws=raws,
                positions=offs,
                resume={offset_key(t, p): offs[-1] + 1},
            )
            for (t, p), (raws, offs) in groups.items()
        ]

    def seek(self, partition: int, offsets: Offsets) -> None:
        """Record the checkpointed offsets; _on_assign hands them to assign()."""
        for topic in self.topics:
            off = offsets.get(offset_key(topic, partition))
            if off is not None:
                self._seek[(topic, partition)] = off

    def commit(self, partition: int, offsets: Offsets) -> None:
        """Commit checkpointed offsets to Kafka (informational)."""
        tps = [
            TopicPartition(t, partition, offsets[k])
            for t in self.topics
            if (k := offset_key(t, partition)) in offsets
        ]
        if tps:
            try:
                self.consumer.commit(offsets=tps, asynchronous=False)
            except KafkaException as exc:
                log.warning("offset commit failed: %s", exc)

    def lag(self) -> Lag:
        """Messages behind, high watermark minus position, per assigned topic partition."""
        out: dict[tuple[str, int], int] = {}
        try:
            for tp in self.consumer.position(self.consumer.assignment()):
                if tp.offset < 0:
                    continue
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0:
                    out[(tp.topic, tp.partition)] = max(high - tp.offset, 0)
        except KafkaException:
            return Lag(messages=out)
        return Lag(messages=out)

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()


class ConfluentDeadLetterSink:
    """Produces dead letters with librdkafka; flush() raises if any delivery failed."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer = Producer({**_conf(settings), "acks": "all", "linger.ms": 5})
        self._errors: list[str] = []

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Queue each dead letter."""
        for d in letters:
            pos = d.position
            self.producer.produce(
                pos.source + self.settings.dlq_suffix,
                value=d.raw,
                key=f"{pos.source}:{pos.partition}:{pos.offset}".encode(),
                headers=[
                    ("driftd-reason", d.reason.encode()),
                    ("driftd-detail", d.detail[:2000].encode()),
                    ("driftd-source-topic", pos.source.encode()),
                    ("driftd-source-partition", str(pos.partition).encode()),
                    ("driftd-source-offset", str(pos.offset).encode()),
                ],
                on_delivery=self._delivered,
            )
            self.producer.poll(0)

    def flush(self) -> Offsets:
        """Wait for delivery of everything queued."""
        left = self.producer.flush(30)
        errors, self._errors = self._errors, []
        if left or errors:
            raise SourceError(f"dead letters not delivered: {left} pending, errors {errors[:3]}")
        return {}

    def restore(self, offsets: Offsets) -> None:
        """A topic cannot be rewound."""

    def close(self) -> None:
        """Flush."""
        self.producer.flush(30)
