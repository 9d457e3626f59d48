"""The batch queue on a real Kafka broker: keyed by caller (so partitioned by caller) and acknowledged."""

from __future__ import annotations

import uuid

from kafka import KafkaConsumer

from transforms.adapters.kafka import KafkaBatchQueue
from transforms.messages import BatchItemMessage
from transforms.settings import Settings


def message(caller: str, i: int) -> BatchItemMessage:
    return BatchItemMessage(
        request_id=f"r-{uuid.uuid4().hex}", caller_id=caller, model_id="m", image_uri=f"https://img.example/{i}.jpg"
    )


def test_messages_are_keyed_by_caller_and_land_on_one_partition_each(kafka_bootstrap: str) -> None:
    topic = Settings(_env_file=None).batch_topic
    queue = KafkaBatchQueue(kafka_bootstrap, topic)
    assert queue.ready()
    sent = [message(caller, i) for i in range(10) for caller in ("alice", "bob", "carol")]
    queue.publish(sent)
    queue.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"t-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    wanted = {m.request_id for m in sent}
    partitions: dict[str, set[int]] = {}
    for record in consumer:
        got = BatchItemMessage.from_json(record.value)
        if got.request_id in wanted:
            assert record.key.decode() == got.caller_id
            partitions.setdefault(got.caller_id, set()).add(record.partition)
            wanted.discard(got.request_id)
        if not wanted:
            break
    consumer.close()
    assert wanted == set()
    assert all(len(p) == 1 for p in partitions.values()), partitions  # one caller, one partition: order kept


