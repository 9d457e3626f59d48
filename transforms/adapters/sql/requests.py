"""Requests and their results. Every write of the batch path is idempotent on a natural key (request_id, and
(request_id, model_id, model_version) for results), so a replay after a restart changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.batches import close_finished_batches
from transforms.adapters.sql.database import Database, now
from transforms.messages import BatchItemMessage
from transforms.store import CompletedItem, FinishedRequest, NewRequest


class SqlRequests:
    """The `RequestStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, requests: Sequence[NewRequest]) -> None:
        """Insert request rows; existing request_ids are left as they are."""
        if not requests:
            return
        ts = now()
        rows = [{**r.__dict__, "submitted_at": ts} for r in requests]
        with self.db.engine.begin() as conn:
            conn.execute(self.db.dialect.insert(t.inference_requests).on_conflict_do_nothing(), rows)

    def ensure(self, msgs: Sequence[BatchItemMessage]) -> None:
        """Create the request rows of messages written straight to Kafka (no-op for rows the API created)."""
        self.create([NewRequest.from_message(m) for m in msgs])

    def mark_processing(self, request_ids: Sequence[str]) -> None:
        """pending -> processing (other states are left alone, so a replay cannot move a request back)."""
        r = t.inference_requests
        with self.db.engine.begin() as conn:
            conn.execute(
                update(r).where(r.c.request_id.in_(request_ids), r.c.status == "pending").values(status="processing")
            )

    def complete(self, items: Sequence[CompletedItem]) -> None:
        """Upsert the results and mark the requests done, one transaction for a whole micro-batch; idempotent on
        (request_id, model_id, model_version)."""
        if not items:
            return
        ts = now()
        res = t.inference_results
        stmt = self.db.dialect.insert(res)
        stmt = stmt.on_conflict_do_update(
            index_elements=[res.c.request_id, res.c.model_id, res.c.model_version],
            set_={
                "labels": stmt.excluded.labels,
                "threshold_applied": stmt.excluded.threshold_applied,
                # A replay served from the cache has no raw output of its own: keep the first one.
                "raw_output_path": func.coalesce(stmt.excluded.raw_output_path, res.c.raw_output_path),
            },
        )
        r = t.inference_requests
        done = (
            update(r)
            .where(r.c.request_id == bindparam("rid"), r.c.status != "done")
            .values(status="done", image_hash=bindparam("ihash"), completed_at=ts, error_code=None, error_message=None)
        )
        with self.db.engine.begin() as conn:
            conn.execute(stmt, [_result_row(i, ts) for i in items])
            # One executemany (a pipelined batch on psycopg), not a round trip per item.
            conn.execute(done, [{"rid": i.request_id, "ihash": i.image_hash} for i in items])
            close_finished_batches(conn, self.db.dialect, [i.request_id for i in items])

    def insert_finished(self, rows: Sequence[FinishedRequest]) -> None:
        """New requests that are already answered (the sync path): request and result rows, one transaction."""
        if not rows:
            return
        ts = now()
        requests = [
            {
                **f.request.__dict__,
                "status": f.status,
                "error_code": f.error_code,
                "error_message": (f.error_message or "")[:2000] or None,
                "submitted_at": f.submitted_at or ts,
                "completed_at": f.completed_at or ts,
            }
            for f in rows
        ]
        results = [_result_row(f.result, f.completed_at or ts) for f in rows if f.result is not None]
        with self.db.engine.begin() as conn:
            conn.execute(t.inference_requests.insert(), requests)
            if results:
                conn.execute(t.inference_results.insert(), results)

    def fail(self, request_id: str, code: str, message: str, image_hash: str | None = None) -> None:
        """Mark a request failed with a reason; a request already done stays done."""
        r = t.inference_requests
        with self.db.engine.begin() as conn:
            conn.execute(
                update(r)
                .where(r.c.request_id == request_id, r.c.status != "done")
                .values(
                    status="failed",
                    error_code=code,
                    error_message=message[:2000],
                    completed_at=now(),
                    image_hash=func.coalesce(image_hash, r.c.image_hash),
                )
            )
            close_finished_batches(conn, self.db.dialect, [request_id])

    def get(self, request_id: str) -> dict[str, Any] | None:
        """A request row joined with its result, if any."""
        r, res = t.inference_requests, t.inference_results
        q = (
            select(
                r, res.c.model_version, res.c.labels, res.c.cache_hit, res.c.raw_output_path, res.c.threshold_applied
            )
            .select_from(r.outerjoin(res, res.c.request_id == r.c.request_id))
            .where(r.c.request_id == request_id)
        )
        with self.db.engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None


def _result_row(item: CompletedItem, ts: datetime) -> dict[str, Any]:
    return {
        "request_id": item.request_id,
        "model_id": item.model_id,
        "model_version": item.model_version,
        "labels": [lbl.to_dict() for lbl in item.labels],
        "threshold_applied": item.threshold_applied,
        "cache_hit": item.cache_hit,
        "raw_output_path": item.raw_output_uri,
        "created_at": ts,
    }
