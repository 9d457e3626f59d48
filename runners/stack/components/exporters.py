"""Prometheus exporters: Redis (Debian's prometheus-redis-exporter) and the project's pipeline exporter."""

from __future__ import annotations

import shutil
import sys

from runners.stack.components.base import Component, ProjectProcess, http_ok


class RedisExporter(Component):
    """prometheus-redis-exporter reading the stack's Redis."""

    name = "redis-exporter"

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.redis_exporter_port}/metrics"

    def command(self) -> list[str]:
        s = self.settings
        binary = shutil.which("prometheus-redis-exporter") or "/usr/bin/prometheus-redis-exporter"
        return [binary, "-redis.addr", s.redis_url, "-web.listen-address", f"{s.host}:{s.redis_exporter_port}"]

    def healthy(self) -> bool:
        return http_ok(self.url)


class PipelineExporter(ProjectProcess):
    """`imgrec exporter`: the batch job's Kafka consumer lag, dead letters and open batches."""

    name = "pipeline-exporter"

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.pipeline_exporter_port}/metrics"

    def command(self) -> list[str]:
        s = self.settings
        return [sys.executable, "-m", "runners.cli", "exporter", "--host", s.host,
                "--port", str(s.pipeline_exporter_port)]

    def healthy(self) -> bool:
        return http_ok(self.url)
