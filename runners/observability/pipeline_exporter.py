"""`imgrec exporter`: metrics of shared state that no single process owns, computed at each scrape.

The batch job's Kafka consumer lag is computed here, from the group's committed offsets and the partitions' end
offsets, rather than by a third-party exporter: no maintained Kafka lag exporter ships in Debian or PyPI (the Go
ones would need a Go toolchain in `make test`), and the job's group, topics and clients are already the project's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipelines.job_spec import CONSUMER_GROUP
from transforms.composition import open_store
from transforms.settings import Settings

log = logging.getLogger(__name__)
# A scrape must answer within Prometheus' scrape timeout even when Kafka is down: it then reports the source as down.
KAFKA_TIMEOUT_MS = 3000


class KafkaOffsets:
    """End, start and committed offsets of the batch job's topics, with clients kept between scrapes."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin: Any = None
        self._consumer: Any = None

    def _clients(self) -> tuple[Any, Any]:
        from kafka import KafkaAdminClient, KafkaConsumer

        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=KAFKA_TIMEOUT_MS,
                bootstrap_timeout_ms=KAFKA_TIMEOUT_MS,
            )
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, request_timeout_ms=KAFKA_TIMEOUT_MS + 1000,
                bootstrap_timeout_ms=KAFKA_TIMEOUT_MS,
            )
        return self._admin, self._consumer

    def read(self, topics: list[str], group: str) -> tuple[dict[Any, int], dict[Any, int], dict[Any, int]]:
        """(end, beginning, committed) offsets by TopicPartition; a failure drops the clients for the next try."""
        from kafka import TopicPartition

        try:
            admin, consumer = self._clients()
            partitions = [
                TopicPartition(topic, p) for topic in topics for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            end = consumer.end_offsets(partitions)
            beginning = consumer.beginning_offsets(partitions)
            offsets = admin.list_group_offsets({group: None}).get(group, {})
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            return end, beginning, committed
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                client.close()
        self._admin = self._consumer = None


class PipelineCollector(Collector):
    """Consumer lag and messages per topic partition (Kafka) and open batches (the store)."""

    def __init__(self, settings: Settings, group: str = CONSUMER_GROUP) -> None:
        self.settings = settings
        self.group = group
        self.kafka = KafkaOffsets(settings.kafka_bootstrap) if settings.kafka_bootstrap else None
        self.store = open_store(settings)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "imgrec_exporter_source_up", "Whether the last read of a source worked.", labels=["source"]
        )
        for source, read in (("kafka", self._kafka), ("store", self._batches)):
            try:
                metrics = list(read())
            except Exception as exc:
                log.warning("reading %s failed: %s", source, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from metrics
        yield up

    def _kafka(self) -> Iterator[Metric]:
        if self.kafka is None:
            return
        s = self.settings
        end, beginning, committed = self.kafka.read([s.batch_topic, s.dead_letter_topic], self.group)
        lag = GaugeMetricFamily(
            "imgrec_kafka_consumer_lag",
            "Messages of a partition that the batch job's consumer group has not committed yet.",
            labels=["group", "topic", "partition"],
        )
        messages = CounterMetricFamily(
            "imgrec_kafka_topic_messages", "Messages ever written to a partition (its end offset).",
            labels=["topic", "role", "partition"],
        )
        roles = {s.batch_topic: "batch", s.dead_letter_topic: "dead_letter"}
        for tp, end_offset in sorted(end.items()):
            messages.add_metric([tp.topic, roles[tp.topic], str(tp.partition)], end_offset)
            if tp.topic == s.batch_topic:
                # A partition the group never committed is read from its start.
                start = committed.get(tp, beginning.get(tp, 0))
                lag.add_metric([self.group, tp.topic, str(tp.partition)], max(end_offset - start, 0))
        yield lag
        yield messages

    def _batches(self) -> Iterator[Metric]:
        count, oldest = self.store.batches.unfinished()
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily("imgrec_batches_open", "Batches with items still to finish.", value=count)
        yield GaugeMetricFamily(
            "imgrec_batch_oldest_open_seconds", "Age of the oldest batch with items still to finish (0: none).",
            value=max(age, 0.0),
        )


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve /metrics on host:port until the process is stopped."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings))
    start_http_server(port, addr=host, registry=registry)
    log.info("pipeline exporter on http://%s:%d/metrics", host, port)
    threading.Event().wait()
