"""The `Store` port over SQLAlchemy Core, one small store per resource on a shared database; the same code serves
PostgreSQL (the stack) and SQLite (the embedded default)."""

from __future__ import annotations

from sqlalchemy import Engine

from transforms.adapters.sql.batches import SqlBatches
from transforms.adapters.sql.database import Database
from transforms.adapters.sql.embeddings import SqlEmbeddings
from transforms.adapters.sql.keys import SqlKeys
from transforms.adapters.sql.outbox import SqlOutbox
from transforms.adapters.sql.registry import SqlRegistry
from transforms.adapters.sql.requests import SqlRequests


class SqlStore:
    """Registry, keys, requests and results, batches, the webhook outbox and image vectors on one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.registry = SqlRegistry(db)
        self.keys = SqlKeys(db)
        self.requests = SqlRequests(db)
        self.batches = SqlBatches(db)
        self.outbox = SqlOutbox(db)
        self.embeddings = SqlEmbeddings(db)

    @classmethod
    def from_url(cls, url: str, pre_ping: bool = True) -> SqlStore:
        return cls(Database.from_url(url, pre_ping))

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def ping(self) -> bool:
        return self.db.ping()

    def close(self) -> None:
        self.db.close()
