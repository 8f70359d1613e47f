"""What both Kafka clients share: the checkpoint key of a topic partition and which stream
each topic carries."""

from __future__ import annotations

from driftd.config import KafkaSettings
from driftd.daemon.abc import Stream


def offset_key(topic: str, partition: int) -> str:
    """The checkpoint key of a topic partition's next offset."""
    return f"{topic}[{partition}]"


def topic_streams(s: KafkaSettings) -> dict[str, Stream]:
    """Which stream each topic carries."""
    return {s.predictions_topic: "predictions", s.labels_topic: "labels"}
