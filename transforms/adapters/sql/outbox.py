"""The webhook outbox: a row per ended batch with a callback, and every delivery attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now


class SqlOutbox:
    """The `OutboxStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, limit: int = 20) -> list[dict[str, Any]]:
        """Undelivered webhooks whose next attempt is due, with the batch's caller."""
        o = t.webhook_outbox
        q = (
            select(o, t.batches.c.caller_id)
            .select_from(o.join(t.batches, t.batches.c.batch_id == o.c.batch_id))
            .where(o.c.delivered_at.is_(None), o.c.gave_up_at.is_(None), o.c.next_attempt_at <= now())
            .order_by(o.c.next_attempt_at)
            .limit(limit)
        )
        with self.db.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    def record_attempt(
        self, batch_id: str, status_code: int | None, error: str | None, delivered: bool, retry_in: timedelta | None
    ) -> None:
        """Record one delivery attempt; schedule the next one, or give up when `retry_in` is None."""
        o = t.webhook_outbox
        ts = now()
        values: dict[str, Any] = {"attempts": o.c.attempts + 1}
        if delivered:
            values["delivered_at"] = ts
        elif retry_in is None:
            values["gave_up_at"] = ts
        else:
            values["next_attempt_at"] = ts + retry_in
        with self.db.engine.begin() as conn:
            conn.execute(
                t.webhook_attempts.insert().values(
                    batch_id=batch_id, attempted_at=ts, status_code=status_code, error=error
                )
            )
            conn.execute(update(o).where(o.c.batch_id == batch_id).values(**values))

    def attempts(self, batch_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt of a batch's webhook, in order."""
        a = t.webhook_attempts
        with self.db.engine.connect() as conn:
            q = select(a).where(a.c.batch_id == batch_id).order_by(a.c.id)
            return [dict(row._mapping) for row in conn.execute(q)]
