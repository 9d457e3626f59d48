"""Relational persistence (PostgreSQL in the stack, SQLite embedded)."""

from transforms.store.store import BatchSummary, CompletedItem, FinishedRequest, NewRequest, Store

__all__ = ["BatchSummary", "CompletedItem", "FinishedRequest", "NewRequest", "Store"]
