"""The Kafka source and dead-letter sink for the configured client library."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from driftd.config import KafkaSettings
from driftd.daemon.abc import DeadLetterSink, Source
from driftd.daemon.sources.kafka import KafkaDeadLetterSink, KafkaSource, client_options
from driftd.errors import SourceError


def ensure_topics(settings: KafkaSettings, partitions: int = 1) -> None:
    """Create the dead-letter topics when missing (the data topics belong to their owners)."""
    admin = KafkaAdminClient(**client_options(settings))
    try:
        for topic in (settings.predictions_topic, settings.labels_topic):
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic + settings.dlq_suffix, partitions, 1)])
    finally:
        admin.close()


def make_kafka(settings: KafkaSettings, group_id: str) -> tuple[Source, DeadLetterSink]:
    """The source and dead-letter sink for the configured client library."""
    try:
        ensure_topics(settings)
    except KafkaError as exc:
        raise SourceError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    if settings.client == "confluent":
        from driftd.daemon.sources.confluent import ConfluentDeadLetterSink, ConfluentSource

        return ConfluentSource(settings, group_id), ConfluentDeadLetterSink(settings)
    return KafkaSource(settings, group_id), KafkaDeadLetterSink(settings)
