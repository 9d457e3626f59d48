"""The webhook outbox: a row per ended batch with a callback, and every delivery attempt. A replica claims due
rows with a lease, so two API processes never send one webhook at the same time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now


class SqlOutbox:
    """The `OutboxStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, limit: int = 20) -> list[dict[str, Any]]:
        """Undelivered webhooks whose next attempt is due and that no replica holds a live lease on, with the
        batch's caller."""
        with self.db.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(self._due(limit))]

    def claim(self, owner: str, lease: timedelta, limit: int = 20) -> list[dict[str, Any]]:
        """Due webhooks, each leased to `owner` for `lease`: no other replica sends them meanwhile.

        PostgreSQL skips rows another replica is claiming (FOR UPDATE SKIP LOCKED); SQLite serialises writers.
        """
        o = t.webhook_outbox
        ts = now()
        with self.db.engine.begin() as conn:
            due = self._due(limit).with_for_update(skip_locked=True, of=o)
            rows = [dict(row._mapping) for row in conn.execute(due)]
            for row in rows:
                row["delivery_id"] = row["delivery_id"] or uuid.uuid4().hex
                conn.execute(
                    update(o)
                    .where(o.c.batch_id == row["batch_id"])
                    .values(lease_owner=owner, lease_until=ts + lease, delivery_id=row["delivery_id"])
                )
        return rows

    def _due(self, limit: int) -> Any:
        o = t.webhook_outbox
        ts = now()
        return (
            select(o, t.batches.c.caller_id)
            .select_from(o.join(t.batches, t.batches.c.batch_id == o.c.batch_id))
            .where(
                o.c.delivered_at.is_(None),
                o.c.gave_up_at.is_(None),
                o.c.next_attempt_at <= ts,
                or_(o.c.lease_until.is_(None), o.c.lease_until < ts),
            )
            .order_by(o.c.next_attempt_at)
            .limit(limit)
        )

    def record_attempt(
        self,
        batch_id: str,
        status_code: int | None,
        error: str | None,
        delivered: bool,
        retry_in: timedelta | None,
        owner: str | None = None,
    ) -> bool:
        """Record one delivery attempt and end the lease; schedule the next attempt, or give up when `retry_in`
        is None.

        With `owner`, only while that owner still holds the row: False when its lease ran out and another replica
        took the row over (the attempt is still recorded).
        """
        o = t.webhook_outbox
        ts = now()
        values: dict[str, Any] = {"attempts": o.c.attempts + 1, "lease_owner": None, "lease_until": None}
        if delivered:
            values["delivered_at"] = ts
        elif retry_in is None:
            values["gave_up_at"] = ts
        else:
            values["next_attempt_at"] = ts + retry_in
        held = o.c.batch_id == batch_id
        if owner is not None:
            held = and_(held, o.c.lease_owner == owner)
        with self.db.engine.begin() as conn:
            conn.execute(
                t.webhook_attempts.insert().values(
                    batch_id=batch_id, attempted_at=ts, status_code=status_code, error=error
                )
            )
            return conn.execute(update(o).where(held).values(**values)).rowcount == 1

    def attempts(self, batch_id: str) -> list[dict[str, Any]]:
        """Every delivery attempt of a batch's webhook, in order."""
        a = t.webhook_attempts
        with self.db.engine.connect() as conn:
            q = select(a).where(a.c.batch_id == batch_id).order_by(a.c.id)
            return [dict(row._mapping) for row in conn.execute(q)]
