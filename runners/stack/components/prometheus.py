"""Prometheus (Debian's package) scraping every component of the stack, with the project's rules loaded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from runners.observability import names
from runners.stack.components.base import Component, http_ok
from transforms.settings import REPO_ROOT

RULE_FILES = (REPO_ROOT / "prometheus" / "rules.yml",)


class Prometheus(Component):
    """`prometheus` with a generated config: one scrape job per component, the project's rule files."""

    name = "prometheus"

    @property
    def url(self) -> str:
        return self.settings.prometheus_url

    @property
    def config_path(self) -> Path:
        return self.dir / "prometheus.yml"

    def config(self) -> dict[str, Any]:
        """Scrape jobs named as the rules and dashboards expect them (runners/observability/names.py)."""
        s = self.settings

        def job(name: str, *targets: tuple[int, dict[str, str]]) -> dict[str, Any]:
            return {
                "job_name": name,
                "static_configs": [{"targets": [f"{s.host}:{port}"], "labels": labels} for port, labels in targets],
            }

        return {
            "global": {"scrape_interval": s.prometheus_scrape_interval,
                       "evaluation_interval": s.prometheus_scrape_interval},
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [
                job(names.JOB_API, (s.api_port, {})),
                job(names.JOB_PIPELINE, (s.pipeline_exporter_port, {})),
                job(names.JOB_TRITON, (s.triton_metrics_port, {})),
                job(names.JOB_FLINK, (s.flink_jobmanager_metrics_port, {"component": "jobmanager"}),
                    *((s.taskmanager_metrics_port(index), {"component": "taskmanager"})
                      for index in range(1, s.flink_taskmanagers + 1))),
                job(names.JOB_REDIS, (s.redis_exporter_port, {})),
            ],
        }

    def prepare(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def command(self) -> list[str]:
        s = self.settings
        return [
            shutil.which("prometheus") or "/usr/bin/prometheus",
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--storage.tsdb.retention.time={s.prometheus_retention}",
            f"--web.listen-address={s.host}:{s.prometheus_port}",
        ]

    def healthy(self) -> bool:
        return http_ok(f"{self.url}/-/ready")
