"""The composition root: picks each port's adapter from settings (real service or embedded default)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from transforms.backends import make_backend
from transforms.backends.base import InferenceBackend
from transforms.batch_queue import BatchQueue, InProcessBatchQueue, make_batch_queue
from transforms.batch_submission import BatchSubmitter
from transforms.blobs import BlobStore, make_blob_store
from transforms.cache import ResultCache, make_cache, redis_client
from transforms.catalog import ModelCatalog
from transforms.model_registry import load_registry
from transforms.recognizer import Recognizer
from transforms.routing import VersionRouter, make_router, route_from_versions
from transforms.settings import Settings
from transforms.store import Store
from transforms.store.migrations import upgrade
from transforms.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)
DEV_CALLER = "dev"


@dataclass
class Services:
    """Everything the API and the embedded batch runner use, built once per process."""

    settings: Settings
    store: Store
    catalog: ModelCatalog
    router: VersionRouter
    cache: ResultCache
    backend: InferenceBackend
    blobs: BlobStore
    queue: BatchQueue
    recognizer: Recognizer
    batches: BatchSubmitter
    webhooks: WebhookDispatcher
    _background: list[Any] = field(default_factory=list)

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
        if isinstance(self.queue, InProcessBatchQueue):
            from runners.embedded_batch import EmbeddedBatchRunner

            runner = EmbeddedBatchRunner(self, self.queue)
            runner.start()
            self._background.append(runner)

    def stop(self) -> None:
        for worker in self._background:
            worker.stop()
        self.webhooks.stop()
        self.queue.close()
        self.backend.close()
        self.store.close()

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Each dependency: whether it answers, and whether the service needs it to serve."""
        return {
            "database": {"ok": self.store.ping(), "required": True},
            "inference": {"ok": _safe(self.backend.ready), "required": True},
            "cache": {"ok": _safe(self.cache.ready), "required": False},
            "queue": {"ok": _safe(self.queue.ready), "required": False},
        }


def _safe(check: Any) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def build_services(settings: Settings) -> Services:
    """Wire adapters chosen by settings: PostgreSQL or SQLite, Redis or in-process, Triton or ONNX Runtime, ..."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    store = Store.from_url(settings.resolved_database_url)
    catalog = ModelCatalog(store)
    client = redis_client(settings.redis_url) if settings.redis_url else None  # one pool for cache and router
    cache = make_cache(settings, client)
    router = make_router(settings, lambda model_id: route_from_versions(catalog.versions(model_id)), client=client)
    backend = make_backend(settings)
    blobs = make_blob_store(settings)
    queue = make_batch_queue(settings)
    return Services(
        settings=settings,
        store=store,
        catalog=catalog,
        router=router,
        cache=cache,
        backend=backend,
        blobs=blobs,
        queue=queue,
        recognizer=Recognizer(settings, store, catalog, router, cache, backend, blobs),
        batches=BatchSubmitter(settings, store, catalog, blobs, queue),
        webhooks=WebhookDispatcher(settings, store),
    )
