"""Kafka source and dead-letter sink on kafka-python (the default client).

Predictions and labels are keyed by id, so with equal partition counts a prediction and its
label share a partition number; partition ``p`` of both topics forms one unit of state. The
range assignor keeps both topics' partition ``p`` on the same consumer. Offsets are managed by
driftd: on assignment each partition is restored from its checkpoint and the consumer is
sought to the checkpointed offsets; on revocation the partition is checkpointed first. Kafka's
committed offsets are updated after each checkpoint, for lag tooling.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from driftd.config import KafkaSettings
from driftd.contracts.events import DeadLetter
from driftd.daemon.abc import Lag, Offsets, PartitionOwner, RawChunk
from driftd.daemon.sources.topics import offset_key, topic_streams
from driftd.errors import SourceError

log = logging.getLogger("driftd.kafka")


def client_options(s: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumer, producer and admin client."""
    opts: dict[str, Any] = {
        "bootstrap_servers": s.bootstrap_servers.split(","),
        "security_protocol": s.security_protocol,
    }
    if s.sasl_mechanism:
        opts["sasl_mechanism"] = s.sasl_mechanism
        opts["sasl_plain_username"] = s.sasl_username
        opts["sasl_plain_password"] = (
            s.sasl_password.get_secret_value() if s.sasl_password else None
        )
    return opts


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        parts = sorted({tp.partition for tp in revoked})
        log.info("partitions revoked", extra={"partitions": parts})
        if self.source.owner is not None and parts:
            with self.source.in_callback():
                self.source.owner.revoke(parts)

    def on_partitions_assigned(self, assigned: Any) -> None:
        tps = set(assigned)
        parts = sorted({tp.partition for tp in tps})
        topics = self.source.topics
        for p in parts:
            missing = [t for t in topics if TopicPartition(t, p) not in tps]
            if missing:
                log.warning(
                    "partition %d of %s not co-assigned: do the topics have the same "
                    "partition count?",
                    p,
                    ", ".join(missing),
                )
        log.info("partitions assigned", extra={"partitions": parts})
        if self.source.owner is not None:  # even none: the owner starts its lease then
            with self.source.in_callback():
                self.source.owner.assign(parts)


class KafkaSource:
    """Consumes the predictions and labels topics in a consumer group."""

    def __init__(self, settings: KafkaSettings, group_id: str) -> None:
        self.settings = settings
        self.topics = (settings.predictions_topic, settings.labels_topic)
        self._streams = topic_streams(settings)
        self.owner: PartitionOwner | None = None
        # kafka-python runs rebalance listeners on its IO thread, where blocking calls such as
        # commit() are refused: commits made there wait for the next poll().
        self._callback_depth = 0
        self._deferred: dict[TopicPartition, OffsetAndMetadata] = {}
        try:
            self.consumer = KafkaConsumer(
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset=settings.auto_offset_reset,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_records=settings.max_poll_records,
                fetch_min_bytes=settings.fetch_min_bytes,
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
                partition_assignment_strategy=[RangePartitionAssignor],
                **client_options(settings),
            )
        except KafkaError as exc:
            raise SourceError(
                f"cannot connect to Kafka at {settings.bootstrap_servers}: {exc}"
            ) from exc

    @property
    def exhausted(self) -> bool:
        """A topic never ends."""
        return False

    def partition_ids(self) -> list[int]:
        """The predictions topic's partitions, from the metadata the consumer holds (none
        before it has fetched it): the leader waits for a report from each."""
        try:
            ids = self.consumer.partitions_for_topic(self.topics[0])
        except KafkaError:
            return []
        return sorted(ids or ())

    def bind(self, owner: PartitionOwner) -> None:
        """Subscribe; rebalances call ``owner.assign`` / ``owner.revoke`` from poll()."""
        self.owner = owner
        self.consumer.subscribe(list(self.topics), listener=_Listener(self))

    @contextlib.contextmanager
    def in_callback(self) -> Iterator[None]:
        """Mark code that runs inside a rebalance listener."""
        self._callback_depth += 1
        try:
            yield
        finally:
            self._callback_depth -= 1

    def poll(self, timeout_s: float, max_records: int) -> list[RawChunk]:
        """One poll, as one chunk per topic partition."""
        if self._deferred:
            owned = self.consumer.assignment()
            commit = {tp: om for tp, om in self._deferred.items() if tp in owned}
            self._deferred.clear()
            self._commit(commit)
        try:
            batches = self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except KafkaError as exc:
            raise SourceError(f"polling Kafka failed: {exc}") from exc
        chunks = []
        for tp, recs in batches.items():
            if not recs:
                continue
            chunks.append(
                RawChunk(
                    partition=tp.partition,
                    stream=self._streams[tp.topic],
                    source=tp.topic,
                    raws=[r.value if r.value is not None else b"" for r in recs],
                    positions=[r.offset for r in recs],
                    resume={offset_key(tp.topic, tp.partition): recs[-1].offset + 1},
                )
            )
        return chunks

    def seek(self, partition: int, offsets: Offsets) -> None:
        """Seek both topics' partition to the checkpointed offsets (if any)."""
        for topic in self.topics:
            off = offsets.get(offset_key(topic, partition))
            if off is not None:
                self.consumer.seek(TopicPartition(topic, partition), off)

    def commit(self, partition: int, offsets: Offsets) -> None:
        """Commit checkpointed offsets to Kafka (informational: the checkpoint is the truth)."""
        commit = {
            TopicPartition(t, partition): OffsetAndMetadata(offsets[k], "", -1)
            for t in self.topics
            if (k := offset_key(t, partition)) in offsets
        }
        if not commit:
            return
        if self._callback_depth:
            self._deferred.update(commit)
            return
        self._commit(commit)

    def _commit(self, commit: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not commit:
            return
        try:
            self.consumer.commit(commit)
        except KafkaError as exc:  # e.g. a rebalance in progress; the next checkpoint retries
            log.warning("offset commit failed: %s", exc)

    def lag(self) -> Lag:
        """Messages behind, highwater - position, per assigned topic partition (tansu's
        end_offsets is unreliable); a partition with no highwater yet is left out."""
        out = {}
        for tp in self.consumer.assignment():
            hw = self.consumer.highwater(tp)
            if hw is None:
                continue
            try:
                out[(tp.topic, tp.partition)] = max(hw - self.consumer.position(tp), 0)
            except KafkaError:
                continue
        return Lag(messages=out)

    def close(self) -> None:
        """Leave the group and close the connection."""
        self.consumer.close(autocommit=False)


class KafkaDeadLetterSink:
    """Produces dead letters to ``<topic><suffix>`` with the reason and position as headers."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(acks="all", linger_ms=5, **client_options(settings))
        self._pending: list[Any] = []

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Send each dead letter (asynchronously until flush)."""
        for d in letters:
            pos = d.position
            headers = [
                ("driftd-reason", d.reason.encode()),
                ("driftd-detail", d.detail[:2000].encode()),
                ("driftd-source-topic", pos.source.encode()),
                ("driftd-source-partition", str(pos.partition).encode()),
                ("driftd-source-offset", str(pos.offset).encode()),
            ]
            key = f"{pos.source}:{pos.partition}:{pos.offset}".encode()
            self._pending.append(
                self.producer.send(
                    pos.source + self.settings.dlq_suffix, value=d.raw, key=key, headers=headers
                )
            )

    def flush(self) -> Offsets:
        """Wait for every send; raise SourceError if any failed (the checkpoint must wait)."""
        self.producer.flush()
        failed = [f for f in self._pending if f.failed()]
        self._pending.clear()
        if failed:
            raise SourceError(
                f"{len(failed)} dead letters could not be produced: {failed[0].exception}"
            )
        return {}

    def restore(self, offsets: Offsets) -> None:
        """A topic cannot be rewound: dead letters after a crash may repeat (keyed by position)."""

    def close(self) -> None:
        """Flush and close."""
        self.producer.flush()
        self.producer.close()
