"""The composition root: the ports (real service or embedded default, chosen by settings) and what runs on them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from runners.stall_watch import StallWatch
from transforms.batch_queue import BatchQueue, InProcessBatchQueue, make_batch_queue
from transforms.batch_submission import BatchSubmitter
from transforms.model_registry import load_registry
from transforms.ports import Ports
from transforms.recognizer import Recognizer
from transforms.settings import Settings
from transforms.store import Store
from transforms.store.migrations import upgrade
from transforms.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)
DEV_CALLER = "dev"


@dataclass
class Services:
    """Everything the API and the embedded batch runner use, built once per process."""

    ports: Ports
    queue: BatchQueue
    recognizer: Recognizer
    batches: BatchSubmitter
    webhooks: WebhookDispatcher
    stall_watch: StallWatch
    _background: list[Any] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.ports.settings

    @property
    def store(self) -> Store:
        return self.ports.store

    def start(self) -> None:
        """Migrate, seed the registry, create the dev key where asked, and start background workers."""
        upgrade(self.settings.resolved_database_url)
        self.store.seed_registry(load_registry())
        if not self.settings.auth_enabled:
            log.warning("authentication is OFF (IMGREC_AUTH_ENABLED=false): every request runs as 'anonymous'")
        elif self.settings.database_url is None:
            key = self.settings.dev_api_key or self.store.create_api_key(DEV_CALLER)
            if self.settings.dev_api_key and self.store.caller_for_key(key) is None:
                self.store.add_api_key(DEV_CALLER, key)
            log.warning("development API key (caller %r): %s", DEV_CALLER, key)
        self.webhooks.start()
        self.stall_watch.start(interval_s=max(1.0, self.settings.stall_after_s / 6))
        if isinstance(self.queue, InProcessBatchQueue):
            from runners.embedded_batch import EmbeddedBatchRunner

            runner = EmbeddedBatchRunner(self.ports, self.queue)
            runner.start()
            self._background.append(runner)

    def stop(self) -> None:
        for worker in self._background:
            worker.stop()
        self.webhooks.stop()
        self.stall_watch.stop()
        self.queue.close()
        self.ports.close()

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Each dependency: whether it answers, and whether the service needs it to serve."""
        return {
            "database": {"ok": self.store.ping(), "required": True},
            "inference": {"ok": _safe(self.ports.backend.ready), "required": True},
            "cache": {"ok": _safe(self.ports.cache.ready), "required": False},
            "queue": {"ok": _safe(self.queue.ready), "required": False},
        }


def _safe(check: Any) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def build_services(settings: Settings) -> Services:
    """Wire the ports from settings and the use cases on top of them."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    ports = Ports.from_settings(settings)
    queue = make_batch_queue(settings)
    return Services(
        ports=ports,
        queue=queue,
        recognizer=Recognizer(ports),
        batches=BatchSubmitter(settings, ports.store, ports.catalog, ports.blobs, queue),
        webhooks=WebhookDispatcher(settings, ports.store),
        stall_watch=StallWatch(ports.store, settings.stall_after_s, lambda: _job_problem(settings)),
    )


def _job_problem(settings: Settings) -> str | None:
    """Why the Flink batch job cannot make progress now (None when it is ready, or when there is no Flink)."""
    if not settings.flink_rest_url:
        return None
    from pipelines.readiness import job_readiness

    readiness = job_readiness(settings)
    return None if readiness.ready else readiness.reason
