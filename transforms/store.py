"""The `Store` port, one small store per resource (registry, keys, requests and results, batches, webhook
outbox), and the records they move.

The adapter is `transforms/adapters/sql/` (PostgreSQL in the stack, SQLite embedded). Every write of the batch
path is idempotent on a natural key, so a replay after a restart changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

import numpy as np

from transforms.handlers.base import Label, ModelVersion
from transforms.messages import BatchItemMessage


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or did not answer in time; callers answer 503 or retry."""


class IdempotencyKeyTaken(Exception):
    """Another batch of the caller already holds this Idempotency-Key."""


@dataclass(frozen=True)
class BatchSummary:
    """Progress of one batch, derived from its requests' states (never from counters)."""

    batch_id: str
    caller_id: str
    total_count: int
    pending: int
    processing: int
    completed_count: int
    failed_count: int
    rejected: list[dict[str, Any]]
    callback_url: str | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def status(self) -> str:
        finished = self.completed_count + self.failed_count
        if finished < self.total_count:
            return "processing" if finished or self.processing else "pending"
        if self.failed_count == 0:
            return "done"
        return "failed" if self.completed_count == 0 else "partially_failed"


@dataclass(frozen=True)
class NewBatch:
    """A batch row to create (its requests come with it)."""

    batch_id: str
    caller_id: str
    callback_url: str | None
    rejected: list[dict[str, Any]]
    idempotency_key: str | None = None
    request_fingerprint: str | None = None


@dataclass(frozen=True)
class NewRequest:
    """A request row to create."""

    request_id: str
    caller_id: str
    model_id: str
    image_hash: str | None = None
    image_uri: str | None = None
    batch_id: str | None = None
    item_index: int | None = None
    confidence_threshold: float | None = None
    min_label_count: int | None = None
    status: str = "pending"

    @classmethod
    def from_message(cls, m: BatchItemMessage) -> NewRequest:
        """The pending request row of one batch-item message."""
        return cls(
            request_id=m.request_id,
            caller_id=m.caller_id,
            model_id=m.model_id,
            image_uri=m.image_uri,
            batch_id=m.batch_id,
            item_index=m.item_index,
            confidence_threshold=m.confidence_threshold,
            min_label_count=m.min_label_count,
        )


@dataclass(frozen=True)
class ApiKey:
    """An API key as the store keeps it (its hash, never the key): its caller and admission limits (None: the
    settings' default), when it was made and revoked."""

    LIMITS: ClassVar[tuple[str, ...]] = ("rate_per_s", "burst", "max_concurrency", "max_batch_items_in_flight")

    key_hash: str
    caller_id: str
    rate_per_s: float | None = None
    burst: int | None = None
    max_concurrency: int | None = None
    max_batch_items_in_flight: int | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class CompletedItem:
    """One finished inference, ready to be written."""

    request_id: str
    model_id: str
    model_version: str
    image_hash: str
    labels: Sequence[Label]
    raw_output_uri: str | None
    cache_hit: bool
    threshold_applied: float | None = None
    embedding: np.ndarray | None = None  # an embedding model's vector, stored once per (image, model, version)


@dataclass(frozen=True)
class CallerImage:
    """What a caller knows about one of its images: its latest finished request and the labels each model gave."""

    image_hash: str
    request_id: str
    labels: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class FinishedRequest:
    """A sync request written once it has been answered: done with its result, or failed with a reason."""

    request: NewRequest
    result: CompletedItem | None = None
    error_code: str | None = None
    error_message: str | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def status(self) -> str:
        return "done" if self.result is not None else "failed"


class RegistryStore(Protocol):
    """The model registry: every version of every model, and which one is active or canary."""

    def seed(self, models: Iterable[ModelVersion]) -> None: ...

    def versions(self, model_id: str | None = None) -> list[ModelVersion]: ...

    def set_route(
        self, model_id: str, active: str, canary: str | None = None, canary_weight: float = 0.0
    ) -> None: ...


class KeyStore(Protocol):
    """Callers, their API keys (only hashes) and their webhook secrets."""

    def create(self, caller_id: str) -> str: ...

    def add(self, caller_id: str, key: str) -> None: ...

    def caller_for(self, key: str) -> str | None: ...

    def get(self, key: str) -> ApiKey | None: ...

    def set_limits(self, key_hash: str, **limits: float | int | None) -> bool: ...

    def all(self) -> list[ApiKey]: ...

    def revoke(self, key_hash: str) -> bool: ...

    def webhook_secret(self, caller_id: str) -> str | None: ...


class RequestStore(Protocol):
    """Requests and their results."""

    def create(self, requests: Sequence[NewRequest]) -> None: ...

    def ensure(self, msgs: Sequence[BatchItemMessage]) -> None: ...

    def mark_processing(self, request_ids: Sequence[str]) -> None: ...

    def complete(self, items: Sequence[CompletedItem]) -> None: ...

    def insert_finished(self, rows: Sequence[FinishedRequest]) -> None: ...

    def fail(self, request_id: str, code: str, message: str, image_hash: str | None = None) -> None: ...

    def get(self, request_id: str) -> dict[str, Any] | None: ...


class EmbeddingStore(Protocol):
    """Image vectors (written with the results, `CompletedItem.embedding`) and the caller's view of them."""

    def put(self, image_hash: str, model_id: str, model_version: str, vector: np.ndarray) -> None:
        """Store a vector unless one is stored for this image and model version already."""
        ...

    def vectors(self, image_hashes: Sequence[str], model_id: str, model_version: str) -> dict[str, np.ndarray]:
        """The stored vectors of these images (those without one are absent)."""
        ...

    def caller_hashes(
        self, caller_id: str, model_id: str, model_version: str, since: datetime | None = None
    ) -> set[str]:
        """The images with a vector that the caller has finished requests for (any model); with `since`, only those
        whose request finished or whose vector was stored at or after it (a superset of what changed since)."""
        ...

    def caller_images(self, caller_id: str, image_hashes: Sequence[str]) -> dict[str, CallerImage]:
        """The caller's own finished requests of these images; images it never sent are absent."""
        ...


class BatchStore(Protocol):
    """Batches and their progress."""

    def create(self, batch: NewBatch, requests: Sequence[NewRequest]) -> None: ...

    def by_idempotency_key(self, caller_id: str, key: str) -> tuple[str, str | None] | None: ...

    def release_idempotency_key(self, batch_id: str) -> None: ...

    def items_in_flight(self, caller_id: str) -> int: ...

    def open_progress(self) -> list[tuple[str, int, int, int]]: ...

    def summary(self, batch_id: str) -> BatchSummary | None: ...

    def results(self, batch_id: str, offset: int, limit: int) -> list[dict[str, Any]]: ...

    def pending_backlog(self) -> int: ...

    def unfinished(self) -> tuple[int, datetime | None]:
        """Batches with items still to finish: how many, and when the oldest of them was submitted (UTC)."""
        ...

    def recent_throughput(self, window_s: int) -> float | None: ...


class OutboxStore(Protocol):
    """Completion webhooks waiting for delivery, and every attempt."""

    def due(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def claim(self, owner: str, lease: timedelta, limit: int = 20) -> list[dict[str, Any]]: ...

    def record_attempt(
        self,
        batch_id: str,
        status_code: int | None,
        error: str | None,
        delivered: bool,
        retry_in: timedelta | None,
        owner: str | None = None,
    ) -> bool: ...

    def attempts(self, batch_id: str) -> list[dict[str, Any]]: ...


class Store(Protocol):
    """Relational persistence, one small store per resource on one database."""

    registry: RegistryStore
    keys: KeyStore
    requests: RequestStore
    batches: BatchStore
    outbox: OutboxStore
    embeddings: EmbeddingStore

    def ping(self) -> bool: ...

    def close(self) -> None: ...


__all__ = [
    "ApiKey", "BatchStore", "BatchSummary", "CallerImage", "CompletedItem", "EmbeddingStore", "FinishedRequest",
    "IdempotencyKeyTaken", "KeyStore", "NewBatch", "NewRequest", "OutboxStore", "RegistryStore", "RequestStore",
    "Store", "StoreUnavailable",
]  # fmt: skip
