"""Batches: their rows, progress derived from their requests' states, and closing a batch when its last item
finishes (which queues its webhook, exactly once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now
from transforms.adapters.sql.embeddings import from_blob
from transforms.store import BatchSummary, IdempotencyKeyTaken, NewBatch, NewRequest

TERMINAL = ("done", "failed")


class SqlBatches:
    """The `BatchStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, batch: NewBatch, requests: Sequence[NewRequest]) -> None:
        """Write the batch and its request rows in one transaction.

        Raises IdempotencyKeyTaken (and writes nothing) when the caller has a batch with this idempotency key.
        """
        ts = now()
        rows = [{**r.__dict__, "submitted_at": ts} for r in requests]
        try:
            with self.db.engine.begin() as conn:
                conn.execute(t.batches.insert().values(**batch.__dict__, total_count=len(requests), created_at=ts))
                conn.execute(t.inference_requests.insert(), rows)
        except IntegrityError as exc:
            key = batch.idempotency_key
            if key is not None and self.by_idempotency_key(batch.caller_id, key):
                raise IdempotencyKeyTaken(key) from exc
            raise

    def by_idempotency_key(self, caller_id: str, key: str) -> tuple[str, str | None] | None:
        """(batch_id, request fingerprint) of the caller's batch created with this idempotency key."""
        b = t.batches
        q = select(b.c.batch_id, b.c.request_fingerprint).where(b.c.caller_id == caller_id, b.c.idempotency_key == key)
        with self.db.engine.connect() as conn:
            row = conn.execute(q).first()
        return (row.batch_id, row.request_fingerprint) if row else None

    def release_idempotency_key(self, batch_id: str) -> None:
        """Forget a batch's idempotency key (its submission failed), so the client's retry makes a new batch."""
        with self.db.engine.begin() as conn:
            conn.execute(update(t.batches).where(t.batches.c.batch_id == batch_id).values(idempotency_key=None))

    def items_in_flight(self, caller_id: str) -> int:
        """The caller's requests not yet finished (pending or processing)."""
        r = t.inference_requests
        q = select(func.count()).where(r.c.caller_id == caller_id, r.c.status.in_(("pending", "processing")))
        with self.db.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def summary(self, batch_id: str) -> BatchSummary | None:
        """Counts by state for one batch."""
        with self.db.engine.connect() as conn:
            b = conn.execute(select(t.batches).where(t.batches.c.batch_id == batch_id)).first()
            if b is None:
                return None
            r = t.inference_requests
            counts = dict(
                conn.execute(
                    select(r.c.status, func.count()).where(r.c.batch_id == batch_id).group_by(r.c.status)
                ).all()
            )
        m = b._mapping
        return BatchSummary(
            batch_id=batch_id,
            caller_id=m["caller_id"],
            total_count=m["total_count"],
            pending=counts.get("pending", 0),
            processing=counts.get("processing", 0),
            completed_count=counts.get("done", 0),
            failed_count=counts.get("failed", 0),
            rejected=m["rejected"],
            callback_url=m["callback_url"],
            created_at=m["created_at"],
            completed_at=m["completed_at"],
        )

    def results(self, batch_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """One page of a batch's items in item order, with labels (and an embedding model's vector) or error."""
        r, res, e = t.inference_requests, t.inference_results, t.image_embeddings
        vector_of = (e.c.image_hash == r.c.image_hash) & (e.c.model_id == res.c.model_id) & (
            e.c.model_version == res.c.model_version
        )
        q = (
            select(
                r.c.request_id, r.c.item_index, r.c.status, r.c.model_id, r.c.error_code, r.c.error_message,
                res.c.model_version, res.c.labels, res.c.cache_hit, res.c.threshold_applied, e.c.vector,
            )
            .select_from(r.outerjoin(res, res.c.request_id == r.c.request_id).outerjoin(e, vector_of))
            .where(r.c.batch_id == batch_id)
            .order_by(r.c.item_index)
            .offset(offset)
            .limit(limit)
        )  # fmt: skip
        with self.db.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(q)]
        for row in rows:
            vector = row.pop("vector")
            row["embedding"] = None if vector is None else from_blob(vector)
        return rows

    def pending_backlog(self) -> int:
        """Requests not yet finished, across all callers (for completion estimates)."""
        r = t.inference_requests
        with self.db.engine.connect() as conn:
            return conn.execute(select(func.count()).where(r.c.status.in_(("pending", "processing")))).scalar_one()

    def open_progress(self) -> list[tuple[str, int, int, int]]:
        """(batch_id, finished, pending, processing) of every batch that has not ended."""
        r, b = t.inference_requests, t.batches
        q = (
            select(
                b.c.batch_id,
                func.count().filter(r.c.status.in_(TERMINAL)),
                func.count().filter(r.c.status == "pending"),
                func.count().filter(r.c.status == "processing"),
            )
            .select_from(b.join(r, r.c.batch_id == b.c.batch_id))
            .where(b.c.completed_at.is_(None))
            .group_by(b.c.batch_id)
        )
        with self.db.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(q)]

    def unfinished(self) -> tuple[int, datetime | None]:
        """Batches with items still to finish: how many, and when the oldest of them was submitted (UTC)."""
        b = t.batches
        with self.db.engine.connect() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(b.c.created_at)).where(b.c.completed_at.is_(None), b.c.total_count > 0)
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return count, oldest

    def recent_throughput(self, window_s: int) -> float | None:
        """Batch requests finished per second over the last `window_s` seconds, None when none finished."""
        r = t.inference_requests
        since = now() - timedelta(seconds=window_s)
        with self.db.engine.connect() as conn:
            count, first = conn.execute(
                select(func.count(), func.min(r.c.completed_at)).where(
                    r.c.completed_at >= since, r.c.batch_id.is_not(None)
                )
            ).one()
        if not count or first is None:
            return None
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
        return count / max((now() - first).total_seconds(), 1.0)


def close_finished_batches(conn: Connection, dialect: ModuleType, request_ids: Sequence[str]) -> None:
    """Stamp batches whose last item just finished and queue their webhook, exactly once; runs inside the
    transaction that finished the items."""
    r = t.inference_requests
    batch_ids = (
        conn.execute(select(r.c.batch_id).distinct().where(r.c.request_id.in_(request_ids), r.c.batch_id.is_not(None)))
        .scalars()
        .all()
    )
    for batch_id in batch_ids:
        # Lock the batch row so two sinks finishing its last items concurrently cannot both miss the end.
        locked = conn.execute(
            select(t.batches.c.completed_at, t.batches.c.callback_url)
            .where(t.batches.c.batch_id == batch_id)
            .with_for_update()
        ).first()
        if locked is None or locked.completed_at is not None:
            continue
        open_items = conn.execute(
            select(func.count()).where(r.c.batch_id == batch_id, r.c.status.not_in(TERMINAL))
        ).scalar_one()
        if open_items:
            continue
        ts = now()
        conn.execute(update(t.batches).where(t.batches.c.batch_id == batch_id).values(completed_at=ts))
        if locked.callback_url:
            conn.execute(
                dialect.insert(t.webhook_outbox)
                .values(batch_id=batch_id, url=locked.callback_url, attempts=0, next_attempt_at=ts, created_at=ts)
                .on_conflict_do_nothing()
            )
