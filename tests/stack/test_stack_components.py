"""Each service of the local stack is the real thing: a round trip through its own client."""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import psycopg
import redis
import tritonclient.http
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from tests.conftest import TestStack
from transforms.settings import Settings


def test_postgres_sql_round_trip(postgres_url: str) -> None:
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute("CREATE TEMP TABLE probe (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO probe VALUES (%s, %s)", (7, "seven"))
        assert conn.execute("SELECT note FROM probe WHERE id = 7").fetchone() == ("seven",)
        # The stack migrated the schema when it started.
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert int(version.split(".")[0]) >= 12


def test_redis_set_with_ttl(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"probe:{uuid.uuid4()}"
    client.set(key, b"value", px=300)
    assert client.get(key) == b"value"
    assert 0 < client.pttl(key) <= 300
    time.sleep(0.5)
    assert client.get(key) is None
    assert client.info("server")["redis_version"]


def test_redis_is_a_bounded_cache(redis_url: str) -> None:
    config = redis.Redis.from_url(redis_url, decode_responses=True).config_get("maxmemory*")
    assert int(config["maxmemory"]) == 512 * 2**20
    assert config["maxmemory-policy"] == "allkeys-lru"


def test_kafka_consumer_group_reads_every_partition(kafka_bootstrap: str) -> None:
    topic = f"probe-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=f"group-{topic}",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
    received: dict[bytes, bytes] = {}
    partitions: set[int] = set()
    for record in consumer:
        received[record.key] = record.value
        partitions.add(record.partition)
        if len(received) == len(sent):
            break
    consumer.commit()
    committed = {tp.partition: consumer.committed(tp) for tp in consumer.assignment()}
    consumer.close()
    assert received == sent
    assert partitions == {0, 1, 2}
    assert sum(committed.values()) == len(sent)


def test_kafka_batch_topics_exist(kafka_bootstrap: str) -> None:
    settings = Settings()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert len(consumer.partitions_for_topic(settings.batch_topic)) == settings.batch_partitions
        assert consumer.partitions_for_topic(settings.dead_letter_topic)
    finally:
        consumer.close()


def test_triton_server_and_model_metadata(test_stack: TestStack, triton_url: str) -> None:
    client = tritonclient.http.InferenceServerClient(test_stack.stack.settings.triton_http_url.split("//")[1])
    try:
        server = client.get_server_metadata()
        assert server["name"] == "triton"
        assert client.is_server_ready()
        ready = [model for model in client.get_model_repository_index() if model.get("state") == "READY"]
        assert ready, "the repository should serve at least one model"
        metadata = client.get_model_metadata(ready[0]["name"])
        assert metadata["inputs"] and metadata["outputs"]
        assert metadata["versions"]
    finally:
        client.close()
    # IMGREC_TRITON_URL is the gRPC endpoint: it accepts an HTTP/2 channel.
    grpc.channel_ready_future(grpc.insecure_channel(triton_url)).result(timeout=10)


def test_flink_overview_lists_the_taskmanager_and_its_slots(test_stack: TestStack, flink_rest_url: str) -> None:
    overview = httpx.get(f"{flink_rest_url}/overview", timeout=5).json()
    assert overview["taskmanagers"] == 1
    assert overview["slots-total"] == test_stack.stack.settings.flink_slots
    taskmanagers = httpx.get(f"{flink_rest_url}/taskmanagers", timeout=5).json()["taskmanagers"]
    assert taskmanagers[0]["slotsNumber"] == overview["slots-total"]
