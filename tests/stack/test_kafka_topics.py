"""Topic bootstrap (`imgrec bootstrap topics`, the stack's Kafka) on a real broker: created, grown, kept."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaAdminClient
from typer.testing import CliRunner

from runners.cli import app
from runners.kafka_topics import ensure_topics


def partitions(admin: KafkaAdminClient, topic: str, at_least: int = 1) -> int:
    """The topic's partition count once the broker's metadata shows at least `at_least` (creation propagates)."""
    deadline = time.monotonic() + 15
    while True:
        [described] = admin.describe_topics([topic])
        count = 0 if described.get("error_code") else len(described["partitions"])
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def test_topics_are_created_then_grown_never_shrunk(kafka_bootstrap: str) -> None:
    topic, dlq = f"t-{uuid.uuid4().hex[:8]}", f"d-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert ensure_topics(admin, {topic: 2, dlq: 1}) == {topic: "created", dlq: "created"}
        assert partitions(admin, topic) == 2
        assert ensure_topics(admin, {topic: 6, dlq: 1}) == {topic: "grown from 2", dlq: "kept"}
        assert partitions(admin, topic, at_least=6) == 6
        assert ensure_topics(admin, {topic: 4, dlq: 1}) == {topic: "kept", dlq: "kept"}
    finally:
        admin.delete_topics([topic, dlq])
        admin.close()


def test_bootstrap_topics_command_sizes_the_batch_topic_from_settings(kafka_bootstrap: str, monkeypatch) -> None:
    from transforms.settings import get_settings

    topic = f"b-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("IMGREC_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("IMGREC_BATCH_TOPIC", topic)
    monkeypatch.setenv("IMGREC_BATCH_PARTITIONS", "5")
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["bootstrap", "topics"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert f"topic {topic}: created" in done.output
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert partitions(admin, topic) == 5
        admin.delete_topics([topic])
    finally:
        admin.close()
