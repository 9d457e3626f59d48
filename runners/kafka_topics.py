"""Create the batch, dead-letter and results topics, or grow them to the configured partition counts."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from transforms.settings import Settings


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Topic name -> partitions: the batch and results topics as configured, one partition for dead letters."""
    return {settings.batch_topic: settings.batch_partitions, settings.dead_letter_topic: 1,
            settings.results_topic: settings.batch_partitions}


def ensure_topics(
    admin: KafkaAdminClient, partitions: dict[str, int], replication_factor: int = 1, timeout_ms: int = 10_000
) -> dict[str, str]:
    """Create missing topics and grow those with fewer partitions than wanted (Kafka never shrinks a topic), then
    wait until every partition of them has a leader (a fresh broker accepts a topic before that).

    Returns what happened to each topic: "created", "grown from N" or "kept".
    """
    existing = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(partitions))
                if not t.get("error_code")}
    missing = [NewTopic(name, count, replication_factor) for name, count in partitions.items() if name not in existing]
    if missing:
        # Another client may have created one in the meantime.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(missing)
    grow = {name: NewPartitions(count) for name, count in partitions.items() if existing.get(name, count) < count}
    if grow:
        admin.create_partitions(grow)
    admin.wait_for_topics(list(partitions), timeout_ms=timeout_ms)  # in the brokers' metadata, with leaders
    return {
        name: "created" if name not in existing else f"grown from {existing[name]}" if name in grow else "kept"
        for name in partitions
    }
