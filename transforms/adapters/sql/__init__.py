"""The SQL adapter of the `Store` port: SQLAlchemy Core tables, the store and the Alembic migrations."""

from transforms.adapters.sql.migrations import upgrade
from transforms.adapters.sql.store import SqlStore

__all__ = ["SqlStore", "upgrade"]
