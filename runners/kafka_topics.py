"""Create the batch and dead-letter topics, or grow the batch topic to the configured partition count."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from transforms.settings import Settings


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Topic name -> partitions: the batch topic as configured, one partition for dead letters."""
    return {settings.batch_topic: settings.batch_partitions, settings.dead_letter_topic: 1}


def ensure_topics(admin: KafkaAdminClient, partitions: dict[str, int], replication_factor: int = 1) -> dict[str, str]:
    """Create missing topics and grow those with fewer partitions than wanted (Kafka never shrinks a topic).

    Returns what happened to each topic: "created", "grown from N" or "kept".
    """
    existing = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(partitions))
                if not t.get("error_code")}
    missing = [NewTopic(name, count, replication_factor) for name, count in partitions.items() if name not in existing]
    if missing:
        # Another client may have created one in the meantime.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(missing)
        admin.wait_for_topics([topic.name for topic in missing])  # in the brokers' metadata, with leaders
    grow = {name: NewPartitions(count) for name, count in partitions.items() if existing.get(name, count) < count}
    if grow:
        admin.create_partitions(grow)
    return {
        name: "created" if name not in existing else f"grown from {existing[name]}" if name in grow else "kept"
        for name in partitions
    }
