"""The pipeline exporter against a real Kafka broker and a real store: lag, dead letters, open batches."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from runners.observability.pipeline_exporter import PipelineCollector
from transforms.composition import migrate
from transforms.settings import Settings
from transforms.store import NewBatch, NewRequest


def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for partition, count in counts.items():
        for i in range(count):
            producer.send(topic, value=f"m{i}".encode(), partition=partition)
    producer.flush()
    producer.close()


def test_lag_dead_letters_and_open_batches(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    topic, dlq, group = f"lag-{run}", f"dlq-{run}", f"group-{run}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1), NewTopic(dlq, 1, 1)])
    finally:
        admin.close()
    _produce(kafka_bootstrap, topic, {0: 5, 1: 3})
    _produce(kafka_bootstrap, dlq, {0: 2})
    settings = Settings(var_dir=tmp_path, kafka_bootstrap=kafka_bootstrap, batch_topic=topic, dead_letter_topic=dlq)
    migrate(settings.resolved_database_url)
    collector = PipelineCollector(settings, group=group)
    registry = CollectorRegistry()
    registry.register(collector)

    # A fresh broker creates its group coordinator on first use: the source reads as down until then.
    deadline = time.monotonic() + 60
    while registry.get_sample_value("imgrec_exporter_source_up", {"source": "kafka"}) != 1:
        assert time.monotonic() < deadline, "the exporter never read Kafka"
        time.sleep(1)

    def lag(partition: int) -> float | None:
        labels = {"group": group, "topic": topic, "partition": str(partition)}
        return registry.get_sample_value("imgrec_kafka_consumer_lag", labels)

    # Nothing committed yet: the group would read every partition from its start.
    assert (lag(0), lag(1)) == (5, 3)
    dead = {"topic": dlq, "role": "dead_letter", "partition": "0"}
    assert registry.get_sample_value("imgrec_kafka_topic_messages_total", dead) == 2
    assert registry.get_sample_value("imgrec_batches_open") == 0
    assert registry.get_sample_value("imgrec_batch_oldest_open_seconds") == 0

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "", -1)})
    consumer.close()
    assert (lag(0), lag(1)) == (1, 3)

    first = NewRequest("r1", "alice", "m", batch_id="b1", item_index=0)
    collector.store.batches.create(NewBatch("b1", "alice", None, []), [first])
    assert registry.get_sample_value("imgrec_batches_open") == 1
    assert registry.get_sample_value("imgrec_batch_oldest_open_seconds") >= 0
    collector.kafka.close()
    collector.store.close()
