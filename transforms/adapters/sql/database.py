"""One database (PostgreSQL in the stack, SQLite embedded): the engine every resource's store shares."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite


def now() -> datetime:
    return datetime.now(UTC)


class Database:
    """An engine and its dialect (for the dialect's INSERT ... ON CONFLICT)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: ModuleType = postgresql if engine.dialect.name == "postgresql" else sqlite

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Open a database; SQLite gets WAL and a busy timeout so worker threads and the API can share it."""
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        return cls(engine)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.engine.dispose()
