"""Relational persistence (PostgreSQL in the stack, SQLite embedded)."""

from transforms.store.store import (
    ApiKey,
    BatchSummary,
    CompletedItem,
    IdempotencyKeyTaken,
    NewRequest,
    Store,
    StoreUnavailable,
)

__all__ = ["ApiKey", "BatchSummary", "CompletedItem", "IdempotencyKeyTaken", "NewRequest", "Store", "StoreUnavailable"]
