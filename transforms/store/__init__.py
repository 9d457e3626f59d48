"""Relational persistence (PostgreSQL in the stack, SQLite embedded)."""

from transforms.store.store import BatchSummary, CompletedItem, NewRequest, Store

__all__ = ["BatchSummary", "CompletedItem", "NewRequest", "Store"]
