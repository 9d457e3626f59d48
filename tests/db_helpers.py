"""A database of a test's own on the session's PostgreSQL; what a batch left in PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, func, select, text

from transforms.adapters.sql import SqlStore
from transforms.adapters.sql import tables as t


def fresh_database(postgres_url: str, prefix: str = "t_") -> str:
    """Create an empty database next to `postgres_url`'s and return its URL."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


def stored_results(store: SqlStore, batch_id: str) -> dict[str, tuple[int, int]]:
    """Each item of the batch: (its result rows, how many of them are cache hits)."""
    r, res = t.inference_requests, t.inference_results
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(r.c.request_id, func.count(res.c.request_id), func.count().filter(res.c.cache_hit))
            .select_from(r.outerjoin(res, res.c.request_id == r.c.request_id))
            .where(r.c.batch_id == batch_id).group_by(r.c.request_id)
        ).all()
    return {request_id: (results, hits) for request_id, results, hits in rows}
