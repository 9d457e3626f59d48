"""Helpers for tests that drive the Flink batch job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
from kafka import KafkaConsumer, TopicPartition

from pipelines.submit import job_status
from transforms.adapters.sql import SqlStore
from transforms.settings import Settings


def wait_running(settings: Settings, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job_status(settings)
        if status is not None and status.state == "RUNNING":
            return
        time.sleep(0.5)
    raise AssertionError(f"job not running: {job_status(settings)}")


def wait_completed(store: SqlStore, batch_id: str, count: int, timeout_s: float = 120) -> None:
    """Until at least `count` items of the batch are completed."""
    deadline = time.monotonic() + timeout_s
    while store.batches.summary(batch_id).completed_count < count:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.1)


def job_failovers(settings: Settings) -> int:
    """Failures the running job has recovered from (its exception history)."""
    status = job_status(settings)
    assert status is not None
    url = f"{settings.flink_rest_url}/jobs/{status.job_id}/exceptions"
    return len(httpx.get(url, timeout=10).json()["exceptionHistory"]["entries"])


class ResultsReader:
    """A consumer of the whole results topic that reads committed messages only (by default), as a producer's
    client would."""

    def __init__(self, settings: Settings, isolation_level: str = "read_committed") -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, isolation_level=isolation_level,
                                      enable_auto_commit=False, consumer_timeout_ms=500)
        partitions = [TopicPartition(settings.results_topic, p)
                      for p in self.consumer.partitions_for_topic(settings.results_topic)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning()
        self.records: list[tuple[bytes | None, dict]] = []

    def read_until(self, done: Callable[[list[dict]], bool], timeout_s: float = 180) -> list[dict]:
        """Read on until `done(messages so far)`; returns every message read."""
        deadline = time.monotonic() + timeout_s
        while not done(self.messages):
            assert time.monotonic() < deadline, f"results not complete: {len(self.messages)} read"
            self.records.extend((m.key, json.loads(m.value)) for m in self.consumer)
        return self.messages

    @property
    def messages(self) -> list[dict]:
        return [message for _, message in self.records]

    def close(self) -> None:
        self.consumer.close()
