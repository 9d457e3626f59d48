"""Kafka producers: the batch queue (one message per item on the batch topic) and the sync path's answers on the
results topic, both keyed by caller_id."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from transforms.batch_queue import QueueUnavailable
from transforms.messages import BatchItemMessage
from transforms.results import ItemResult


class _Producer:
    """An idempotent producer on one topic that connects on first use, so the API starts (and serves the sync
    path) while Kafka is down."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._producer: Any = None
        self._lock = threading.Lock()

    def _connected(self) -> Any:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        with self._lock:
            if self._producer is None:
                try:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self._bootstrap,
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=5,
                        compression_type="lz4",
                        request_timeout_ms=10_000,
                        max_block_ms=10_000,
                        # Fail fast when the broker is down: the caller gets a 503 and retries.
                        bootstrap_timeout_ms=5_000,
                        delivery_timeout_ms=30_000,
                    )
                except KafkaError as exc:
                    raise QueueUnavailable(f"Kafka at {self._bootstrap} is unreachable: {exc}") from exc
            return self._producer

    def _send_all(self, records: Sequence[tuple[str | None, bytes]]) -> None:
        """Send (key, value) records and wait for every acknowledgement; raises QueueUnavailable if any is missing."""
        from kafka.errors import KafkaError

        producer = self._connected()
        try:
            futures = [producer.send(self.topic, key=k.encode() if k else None, value=v) for k, v in records]
            producer.flush(timeout=30)
            for f in futures:
                f.get(timeout=30)
        except KafkaError as exc:
            raise QueueUnavailable(f"Kafka did not accept the messages: {exc}") from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


class KafkaBatchQueue(_Producer):
    """One message per item on the batch topic, keyed by caller_id (so partitioned by caller)."""

    def publish(self, messages: Sequence[BatchItemMessage]) -> None:
        """Send and wait for every acknowledgement; raises QueueUnavailable if any is missing."""
        self._send_all([(m.caller_id, m.to_json()) for m in messages])

    def ready(self) -> bool:
        """The broker answers metadata for the batch topic (`bootstrap_connected` is unreliable here)."""
        from kafka.errors import KafkaError

        try:
            return bool(self._connected().partitions_for(self.topic))
        except (QueueUnavailable, KafkaError):
            return False


class KafkaResultPublisher(_Producer):
    """The sync path's answers on the results topic, keyed by caller_id (at least once: a retried write after a
    lost acknowledgement can repeat one; the Flink job's answers are the exactly-once ones)."""

    def publish(self, answers: Sequence[ItemResult]) -> None:
        self._send_all([(a.caller_id, a.to_json().encode()) for a in answers])
