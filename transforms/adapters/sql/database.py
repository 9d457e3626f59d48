"""One database (PostgreSQL in the stack, SQLite embedded): the engine every resource's store shares."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from transforms.store import StoreUnavailable

# Bounds on every database call: a dead or stuck server costs a caller seconds, not minutes.
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 15_000
POOL_TIMEOUT_S = 5


def now() -> datetime:
    return datetime.now(UTC)


class Database:
    """An engine and its dialect (for the dialect's INSERT ... ON CONFLICT)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: ModuleType = postgresql if engine.dialect.name == "postgresql" else sqlite

    @classmethod
    def from_url(cls, url: str, pre_ping: bool = True) -> Database:
        """Open a database; SQLite gets WAL and a busy timeout so worker threads and the API can share it.

        `pre_ping` tests each pooled connection with a round trip before use, so a caller never meets a connection
        that a database restart closed. A caller that retries every call on `StoreUnavailable` can turn it off:
        the first call on a dead connection fails, SQLAlchemy then replaces the whole pool, and the retry succeeds.
        """
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
            engine = create_engine(
                url,
                pool_pre_ping=pre_ping,
                pool_size=10,
                max_overflow=20,
                pool_timeout=POOL_TIMEOUT_S,
                connect_args={
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                },
            )

        @event.listens_for(engine, "handle_error")
        def _unavailable(context: Any) -> None:
            # Lost, refused or timed-out connections (and statement timeouts) are an outage, not a bug.
            if context.is_disconnect or isinstance(context.sqlalchemy_exception, OperationalError | InterfaceError):
                raise StoreUnavailable(f"database unavailable: {context.original_exception}") from (
                    context.sqlalchemy_exception
                )

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
