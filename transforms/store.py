"""The `Store` port (requests, results, batches, registry, API keys, webhook outbox) and the records it moves.

The adapter is `transforms/adapters/sql/` (PostgreSQL in the stack, SQLite embedded). Every write of the batch
path is idempotent on a natural key, so a replay after a restart changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from transforms.handlers.base import Label, ModelVersion
from transforms.messages import BatchItemMessage


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
    """An API key as the store keeps it: its hash, never the key."""

    key_hash: str
    caller_id: str
    created_at: datetime
    revoked_at: datetime | None


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


class Store(Protocol):
    """Relational persistence for the service, as the use cases and the API see it."""

    def ping(self) -> bool: ...

    def close(self) -> None: ...

    # --- model registry ---
    def seed_registry(self, models: Iterable[ModelVersion]) -> None: ...

    def get_model_versions(self, model_id: str | None = None) -> list[ModelVersion]: ...

    def set_route(
        self, model_id: str, active: str, canary: str | None = None, canary_weight: float = 0.0
    ) -> None: ...

    # --- callers and API keys ---
    def create_api_key(self, caller_id: str) -> str: ...

    def add_api_key(self, caller_id: str, key: str) -> None: ...

    def caller_for_key(self, key: str) -> str | None: ...

    def api_keys(self) -> list[ApiKey]: ...

    def revoke_api_key(self, key_hash: str) -> bool: ...

    def webhook_secret(self, caller_id: str) -> str | None: ...

    # --- requests and results ---
    def create_requests(self, requests: Sequence[NewRequest]) -> None: ...

    def ensure_request(self, msg: BatchItemMessage) -> None: ...

    def mark_processing(self, request_ids: Sequence[str]) -> None: ...

    def complete_requests(self, items: Sequence[CompletedItem]) -> None: ...

    def insert_finished(self, rows: Sequence[FinishedRequest]) -> None: ...

    def fail_request(self, request_id: str, code: str, message: str, image_hash: str | None = None) -> None: ...

    def get_request(self, request_id: str) -> dict[str, Any] | None: ...

    # --- batches ---
    def create_batch(
        self,
        batch_id: str,
        caller_id: str,
        requests: Sequence[NewRequest],
        callback_url: str | None,
        rejected: list[dict[str, Any]],
    ) -> None: ...

    def batch_summary(self, batch_id: str) -> BatchSummary | None: ...

    def batch_results(self, batch_id: str, offset: int, limit: int) -> list[dict[str, Any]]: ...

    def pending_backlog(self) -> int: ...

    def open_batches(self) -> tuple[int, datetime | None]:
        """Batches with items still to finish: how many, and when the oldest of them was submitted (UTC)."""
        ...

    def recent_throughput(self, window_s: int) -> float | None: ...

    # --- webhook outbox ---
    def due_webhooks(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def record_webhook_attempt(
        self, batch_id: str, status_code: int | None, error: str | None, delivered: bool, retry_in: timedelta | None
    ) -> None: ...

    def webhook_attempts(self, batch_id: str) -> list[dict[str, Any]]: ...


__all__ = ["ApiKey", "BatchSummary", "CompletedItem", "FinishedRequest", "NewRequest", "Store"]
