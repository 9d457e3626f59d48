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
from pathlib import Path
from typing import Any, Protocol

from transforms.adapters.artifacts import ArtifactFiles, Converter
from transforms.adapters.embedded_batch import EmbeddedBatchRunner
from transforms.adapters.flink import FlinkJobHealth
from transforms.adapters.fsspec import FsspecBlobStore
from transforms.adapters.httpx import HttpImageFetcher, HttpWebhookSender
from transforms.adapters.kafka import KafkaBatchQueue, KafkaResultPublisher
from transforms.adapters.limits import LimitsRateLimiter
from transforms.adapters.onnxruntime import InProcessModelRepository, OnnxRuntimeBackend
from transforms.adapters.redis import RedisClient, RedisResultCache, RedisRouteStore, redis_client
from transforms.adapters.sql import SqlStore, upgrade
from transforms.adapters.sql.lifecycle import SqlLifecycleStore
from transforms.adapters.triton import TritonBackend
from transforms.adapters.triton_repository import TritonModelRepository, build_triton_repository
from transforms.adapters.usearch import UsearchFactory
from transforms.backends.base import InferenceBackend
from transforms.batch_queue import BatchQueue, InProcessBatchQueue
from transforms.batch_submission import BatchSubmitter
from transforms.blobs import BlobStore
from transforms.cache import MemoryResultCache, ResultCache
from transforms.catalog import ModelCatalog
from transforms.handlers import HANDLERS, get_handler
from transforms.handlers.base import ModelVersion
from transforms.job_health import JOB_NAME, JobHealth
from transforms.lifecycle.directory import ModelDirectory
from transforms.lifecycle.evaluation import Evaluator
from transforms.lifecycle.ports import ModelRepository
from transforms.lifecycle.registration import Registrar
from transforms.lifecycle.service import ModelLifecycle
from transforms.lifecycle.warmup import CacheWarmer
from transforms.model_registry import load_registry
from transforms.ports import Ports
from transforms.rate_limits import RateLimiter
from transforms.recognizer import Recognizer
from transforms.results import ResultPublisher
from transforms.routing import Lookup, MemoryRouteStore, RouteStore, VersionRouter, route_from_versions
from transforms.settings import Settings
from transforms.stall_watch import StallWatch
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


def open_store(settings: Settings, pre_ping: bool = True) -> Store:
    """PostgreSQL when `database_url` is set, else SQLite under `var_dir` (`pre_ping`: see `Database.from_url`)."""
    return SqlStore.from_url(settings.resolved_database_url, pre_ping)


def make_cache(settings: Settings, client: RedisClient | None = None) -> ResultCache:
    """Redis when `redis_url` is set (or a Redis client is given), else the in-process LRU."""
    if client is not None:
        return RedisResultCache(client, settings.cache_ttl_s)
    if settings.redis_url:
        return RedisResultCache.from_url(settings.redis_url, settings.cache_ttl_s)
    return MemoryResultCache(settings.cache_ttl_s, settings.cache_max_entries)


def make_router(
    settings: Settings, lookup: Lookup, client: RedisClient | None = None, rng: Callable[[], float] = random.random,
    memo_s: float = 0.0,
) -> VersionRouter:
    """Routes cached in Redis when `redis_url` is set (or a Redis client is given), else in process; `memo_s`: see
    `VersionRouter`."""
    if client is None and settings.redis_url:
        client = redis_client(settings.redis_url)
    store: RouteStore = RedisRouteStore(client) if client is not None else MemoryRouteStore()
    return VersionRouter(store, lookup, settings.active_version_ttl_s, rng, memo_s)


def registry_router(settings: Settings, store: Store) -> VersionRouter:
    """The version router whose routes are filled straight from the store's registry table."""
    return make_router(settings, lambda model_id: route_from_versions(store.registry.versions(model_id)))


def make_backend(settings: Settings) -> InferenceBackend:
    """Triton over gRPC when `triton_url` is set, else in-process ONNX Runtime on the local model store."""
    if settings.triton_url:
        return TritonBackend(settings.triton_url, settings.triton_timeout_s, settings.triton_channel_max_age_s)
    return make_onnxruntime_backend(settings)


def make_onnxruntime_backend(settings: Settings) -> OnnxRuntimeBackend:
    """In-process ONNX Runtime on the local model store."""
    return OnnxRuntimeBackend(
        settings.resolved_model_store,
        providers=settings.ort_providers,
        threads=settings.ort_threads,
        max_batch=settings.micro_batch_size,
        spinning=settings.ort_spinning,
    )


def make_model_repository(settings: Settings, backend: OnnxRuntimeBackend | None = None) -> ModelRepository:
    """Triton's repository API when `triton_url` is set (with the repository directory it serves), else versions
    loaded into an in-process ONNX Runtime back end."""
    if settings.triton_url:
        if settings.triton_repository is None:
            raise ValueError("IMGREC_TRITON_REPOSITORY must name the repository Triton serves (`imgrec stack env`)")
        return TritonModelRepository(settings, settings.triton_url, settings.triton_repository)
    return InProcessModelRepository(backend or make_onnxruntime_backend(settings))


def write_triton_repository(
    settings: Settings, dest: Path, rows: list[ModelVersion] | None = None, gpu: bool = False
) -> Path:
    """Generate a Triton model repository (default: the committed registry's rows) into dest."""
    return build_triton_repository(settings, dest, rows if rows is not None else load_registry(), gpu=gpu)


def make_blob_store(settings: Settings) -> BlobStore:
    """The blob store at `Settings.resolved_blob_root`."""
    return FsspecBlobStore(settings.resolved_blob_root)


def make_batch_queue(settings: Settings) -> BatchQueue:
    """Kafka when `kafka_bootstrap` is set, else the in-process queue."""
    if settings.kafka_bootstrap:
        return KafkaBatchQueue(settings.kafka_bootstrap, settings.batch_topic)
    return InProcessBatchQueue()


def make_result_publisher(settings: Settings) -> ResultPublisher | None:
    """The sync path's writer to the results topic, only when `sync_results_to_topic` asks for it (and Kafka is
    configured)."""
    if settings.sync_results_to_topic and settings.kafka_bootstrap:
        return KafkaResultPublisher(settings.kafka_bootstrap, settings.results_topic)
    return None


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Per-key request counters in Redis when `redis_url` is set (shared by every API process), else in process."""
    return LimitsRateLimiter(settings.redis_url or "memory://")


def make_job_health(settings: Settings) -> JobHealth | None:
    """The Flink batch job's readiness, None without a Flink cluster (the embedded runner is always ready)."""
    if not settings.flink_rest_url:
        return None
    return FlinkJobHealth(settings.flink_rest_url, JOB_NAME, settings.batch_topic, settings.batch_partitions)


def build_ports(settings: Settings, store_pre_ping: bool = True, route_memo_s: float = 0.0) -> Ports:
    """Every port of the sync recognizer and the batch steps (what a Flink operator builds in `open`).

    `store_pre_ping=False` saves a database round trip per call for callers that retry every store call on an
    outage (the batch steps do); `route_memo_s` keeps routes in process that long (the batch job, see
    `VersionRouter`).
    """
    store = open_store(settings, store_pre_ping)
    catalog = ModelCatalog(store.registry)
    client = redis_client(settings.redis_url) if settings.redis_url else None  # one pool: cache and router
    return Ports(
        settings=settings,
        store=store,
        catalog=catalog,
        router=make_router(
            settings, lambda model_id: route_from_versions(catalog.versions(model_id)), client, memo_s=route_memo_s
        ),
        cache=make_cache(settings, client),
        backend=make_backend(settings),
        blobs=make_blob_store(settings),
        fetcher=HttpImageFetcher(settings),
        answers=make_result_publisher(settings),
        vectors=UsearchFactory(settings.similarity_index_dtype),
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
    models: ModelDirectory
    stall_watch: StallWatch
    rate_limiter: RateLimiter
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
        self.store.registry.seed(load_registry())
        if not self.settings.auth_enabled:
            log.warning("authentication is OFF (IMGREC_AUTH_ENABLED=false): every request runs as 'anonymous'")
        elif self.settings.database_url is None:
            key = self.settings.dev_api_key or self.store.keys.create(DEV_CALLER)
            if self.settings.dev_api_key and self.store.keys.caller_for(key) is None:
                self.store.keys.add(DEV_CALLER, key)
            log.warning("development API key (caller %r): %s", DEV_CALLER, key)
        self.webhooks.start()
        self.stall_watch.start(interval_s=max(1.0, self.settings.stall_after_s / 6))
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
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
        models=ModelDirectory(lifecycle_store(ports), ports.handler),
        stall_watch=StallWatch(ports.store.batches, settings.stall_after_s, _job_problem(make_job_health(settings))),
        rate_limiter=make_rate_limiter(settings),
        workers=workers,
    )


def _job_problem(health: JobHealth | None) -> Callable[[], str | None]:
    """Why the batch job cannot make progress now (None when it can, or when there is no Flink job)."""

    def problem() -> str | None:
        if health is None:
            return None
        readiness = health.readiness()
        return None if readiness.ready else readiness.reason

    return problem


# --- the model lifecycle -----------------------------------------------------------------------------------------


@dataclass
class LifecycleKit:
    """The lifecycle use cases on one set of ports (what `imgrec models` commands run on)."""

    ports: Ports
    lifecycle: ModelLifecycle
    registrar: Registrar
    repository: ModelRepository
    queue: BatchQueue | None
    serving: str  # "triton", or "onnxruntime" (in process: versions load on first use in each process)

    def close(self) -> None:
        if self.queue is not None:
            self.queue.close()
        self.repository.close()
        self.ports.close()


def lifecycle_store(ports: Ports) -> SqlLifecycleStore:
    """The lifecycle tables, beside the registry on the store's own engine."""
    assert isinstance(ports.store, SqlStore)
    return SqlLifecycleStore(ports.store.db)


def build_lifecycle(settings: Settings, converter: Converter | None = None) -> LifecycleKit:
    """Migrate and seed the registry, then wire the lifecycle: versions load into Triton (or in process, where the
    evaluation runs on the same sessions); a warm promotion needs the shared cache and the batch queue."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    ports = build_ports(settings)
    ports.store.registry.seed(load_registry())
    store = lifecycle_store(ports)
    if settings.triton_url:
        repository = make_model_repository(settings)
        backend_name = "triton"
    else:
        ports.backend.close()
        ports.backend = local = make_onnxruntime_backend(settings)
        repository = make_model_repository(settings, local)
        backend_name = "onnxruntime"
    queue = make_batch_queue(settings) if settings.redis_url and settings.kafka_bootstrap else None
    warmer = CacheWarmer(store, ports.cache, queue) if queue is not None else None
    evaluator = Evaluator(ports.backend, ports.handler, backend_name)
    model_store = settings.resolved_model_store
    registrar = Registrar(
        store,
        ArtifactFiles(converter),
        repository,
        settings.resolved_artifact_root,
        model_store,
        lambda model: get_handler(model, model_store),
        set(HANDLERS),
    )
    lifecycle = ModelLifecycle(store, repository, registry_router(settings, ports.store), evaluator, warmer)
    return LifecycleKit(ports, lifecycle, registrar, repository, queue, backend_name)
