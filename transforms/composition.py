"""The composition root: every port built from settings (the real service's adapter, or the embedded default when
its setting is empty), and the use cases on top of them.

The one place that chooses between adapters; the API, the Flink operators, the CLI and the embedded batch runner
all get their ports from here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from transforms.adapters.embedded_batch import EmbeddedBatchRunner
from transforms.adapters.fsspec import FsspecBlobStore
from transforms.adapters.httpx import HttpImageFetcher, HttpWebhookSender
from transforms.adapters.kafka import KafkaBatchQueue
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.adapters.redis import RedisClient, RedisResultCache, RedisRouteStore, redis_client
from transforms.adapters.sql import SqlStore, upgrade
from transforms.adapters.triton import TritonBackend
from transforms.backends.base import InferenceBackend
from transforms.batch_queue import BatchQueue, InProcessBatchQueue
from transforms.batch_submission import BatchSubmitter
from transforms.blobs import BlobStore
from transforms.cache import MemoryResultCache, ResultCache
from transforms.catalog import ModelCatalog
from transforms.model_registry import load_registry
from transforms.ports import Ports
from transforms.recognizer import Recognizer
from transforms.routing import Lookup, MemoryRouteStore, RouteStore, VersionRouter, route_from_versions
from transforms.settings import Settings
from transforms.store import Store
from transforms.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)
DEV_CALLER = "dev"


class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


# --- one port each ----------------------------------------------------------------------------------------------


def migrate(database_url: str) -> None:
    """Bring the database at `database_url` to the latest schema (idempotent)."""
    upgrade(database_url)


def open_store(settings: Settings) -> Store:
    """PostgreSQL when `database_url` is set, else SQLite under `var_dir`."""
    return SqlStore.from_url(settings.resolved_database_url)


def make_cache(settings: Settings, client: RedisClient | None = None) -> ResultCache:
    """Redis when `redis_url` is set (or a Redis client is given), else the in-process LRU."""
    if client is not None:
        return RedisResultCache(client, settings.cache_ttl_s)
    if settings.redis_url:
        return RedisResultCache.from_url(settings.redis_url, settings.cache_ttl_s)
    return MemoryResultCache(settings.cache_ttl_s, settings.cache_max_entries)


def make_router(
    settings: Settings, lookup: Lookup, client: RedisClient | None = None, rng: Callable[[], float] = random.random
) -> VersionRouter:
    """Routes cached in Redis when `redis_url` is set (or a Redis client is given), else in process."""
    if client is None and settings.redis_url:
        client = redis_client(settings.redis_url)
    store: RouteStore = RedisRouteStore(client) if client is not None else MemoryRouteStore()
    return VersionRouter(store, lookup, settings.active_version_ttl_s, rng)


def registry_router(settings: Settings, store: Store) -> VersionRouter:
    """The version router whose routes are filled straight from the store's registry table."""
    return make_router(settings, lambda model_id: route_from_versions(store.get_model_versions(model_id)))


def make_backend(settings: Settings) -> InferenceBackend:
    """Triton over gRPC when `triton_url` is set, else in-process ONNX Runtime on the local model store."""
    if settings.triton_url:
        return TritonBackend(settings.triton_url, settings.triton_timeout_s, settings.triton_channel_max_age_s)
    return OnnxRuntimeBackend(
        settings.resolved_model_store,
        providers=settings.ort_providers,
        threads=settings.ort_threads,
        max_batch=settings.micro_batch_size,
        spinning=settings.ort_spinning,
    )


def make_blob_store(settings: Settings) -> BlobStore:
    """The blob store at `Settings.resolved_blob_root`."""
    return FsspecBlobStore(settings.resolved_blob_root)


def make_batch_queue(settings: Settings) -> BatchQueue:
    """Kafka when `kafka_bootstrap` is set, else the in-process queue."""
    if settings.kafka_bootstrap:
        return KafkaBatchQueue(settings.kafka_bootstrap, settings.batch_topic)
    return InProcessBatchQueue()


def build_ports(settings: Settings) -> Ports:
    """Every port of the sync recognizer and the batch steps (what a Flink operator builds in `open`)."""
    store = open_store(settings)
    catalog = ModelCatalog(store)
    client = redis_client(settings.redis_url) if settings.redis_url else None  # one pool: cache and router
    return Ports(
        settings=settings,
        store=store,
        catalog=catalog,
        router=make_router(settings, lambda model_id: route_from_versions(catalog.versions(model_id)), client),
        cache=make_cache(settings, client),
        backend=make_backend(settings),
        blobs=make_blob_store(settings),
        fetcher=HttpImageFetcher(settings),
    )


# --- the service -------------------------------------------------------------------------------------------------


@dataclass
class Services:
    """Everything the API uses, built once per process, with the workers that run beside it."""

    ports: Ports
    queue: BatchQueue
    recognizer: Recognizer
    batches: BatchSubmitter
    webhooks: WebhookDispatcher
    workers: list[Worker] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.ports.settings

    @property
    def store(self) -> Store:
        return self.ports.store

    def start(self) -> None:
        """Migrate, seed the registry, create the dev key where asked, and start the background workers."""
        migrate(self.settings.resolved_database_url)
        self.store.seed_registry(load_registry())
        if not self.settings.auth_enabled:
            log.warning("authentication is OFF (IMGREC_AUTH_ENABLED=false): every request runs as 'anonymous'")
        elif self.settings.database_url is None:
            key = self.settings.dev_api_key or self.store.create_api_key(DEV_CALLER)
            if self.settings.dev_api_key and self.store.caller_for_key(key) is None:
                self.store.add_api_key(DEV_CALLER, key)
            log.warning("development API key (caller %r): %s", DEV_CALLER, key)
        self.webhooks.start()
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.webhooks.stop()
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
    """Wire the ports from settings and the use cases on top of them; the in-process queue gets worker threads."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    ports = build_ports(settings)
    queue = make_batch_queue(settings)
    workers: list[Worker] = []
    if isinstance(queue, InProcessBatchQueue):  # the embedded default's stand-in for Kafka + Flink
        workers.append(EmbeddedBatchRunner(ports, queue))
    return Services(
        ports=ports,
        queue=queue,
        recognizer=Recognizer(ports),
        batches=BatchSubmitter(settings, ports.store, ports.catalog, ports.blobs, queue, ports.fetcher),
        webhooks=WebhookDispatcher(settings, ports.store, HttpWebhookSender(settings)),
        workers=workers,
    )
