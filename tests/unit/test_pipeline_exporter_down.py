"""The pipeline exporter with Kafka unreachable: the source is reported down within a scrape, nothing raises."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from runners.observability.pipeline_exporter import PipelineCollector
from transforms.composition import migrate
from transforms.settings import Settings


def test_an_unreachable_broker_is_reported_not_raised(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka_bootstrap="127.0.0.1:9")
    migrate(settings.resolved_database_url)
    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings))
    assert registry.get_sample_value("imgrec_exporter_source_up", {"source": "kafka"}) == 0
    assert registry.get_sample_value("imgrec_exporter_source_up", {"source": "store"}) == 1
    assert registry.get_sample_value("imgrec_kafka_consumer_lag", {}) is None
