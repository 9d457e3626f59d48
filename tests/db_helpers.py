"""A database of a test's own on the session's PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text


def fresh_database(postgres_url: str, prefix: str = "t_") -> str:
    """Create an empty database next to `postgres_url`'s and return its URL."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name
