"""Requests and their results. Every write of the batch path is idempotent on a natural key (request_id, and
(request_id, model_id, model_version) for results), and finished states are final, so a replay after a restart
changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.batches import TERMINAL, close_finished_batches
from transforms.adapters.sql.database import Database, now
from transforms.adapters.sql.embeddings import insert_embeddings
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
        """Create the request rows of messages written straight to Kafka (no-op for rows the API created).

        A message joins its `batch_id` only when that batch exists and is its caller's: a producer's own grouping
        id, or a mistyped one, makes a lone request instead of a row that breaks the foreign key (which would fail
        the job on every replay) or counts towards another caller's batch.

        One statement in autocommit (the batch check is a subquery per row): the job admits every message it reads,
        and for the API's own items it finds the row and writes nothing, so no commit waits on a WAL flush.
        """
        if not msgs:
            return
        b = t.batches
        ts = now()
        rows = []
        for m in msgs:
            row: dict[str, Any] = {**NewRequest.from_message(m).__dict__, "submitted_at": ts}
            if m.batch_id is not None:
                row["batch_id"] = (
                    select(b.c.batch_id).where(b.c.batch_id == m.batch_id, b.c.caller_id == m.caller_id)
                ).scalar_subquery()
            rows.append(row)
        statement = self.db.dialect.insert(t.inference_requests).values(rows).on_conflict_do_nothing()
        with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(statement)

    def mark_processing(self, request_ids: Sequence[str]) -> None:
        """pending -> processing (other states are left alone, so a replay cannot move a request back)."""
        r = t.inference_requests
        with self.db.engine.begin() as conn:
            conn.execute(
                update(r).where(r.c.request_id.in_(request_ids), r.c.status == "pending").values(status="processing")
            )

    def complete(self, items: Sequence[CompletedItem]) -> None:
        """Mark the requests done with their results, one transaction for a whole micro-batch.

        Only requests still open move to done, and each gets its result row in the same transaction, so a done
        request always has its result and a replay changes nothing. A request already sent to inference
        (`processing`) that is now answered from the cache found its own first attempt's entry (a replay after a
        crash between the cache write and this one): that is not a cache hit.
        """
        if not items:
            return
        ts = now()
        by_id = {i.request_id: i for i in items}
        r = t.inference_requests
        finish = (
            update(r)
            .where(r.c.request_id.in_(list(by_id)))
            .values(
                status="done",
                image_hash=case({rid: i.image_hash for rid, i in by_id.items()}, value=r.c.request_id),
                completed_at=ts,
                error_code=None,
                error_message=None,
            )
            .returning(r.c.request_id)
        )
        with self.db.engine.begin() as conn:
            inferred = set(conn.execute(finish.where(r.c.status == "processing")).scalars())
            fresh = set(conn.execute(finish.where(r.c.status == "pending")).scalars())
            rows = [
                _result_row(by_id[rid], ts, cache_hit=by_id[rid].cache_hit and rid not in inferred)
                for rid in by_id
                if rid in inferred or rid in fresh
            ]
            if rows:
                conn.execute(self.db.dialect.insert(t.inference_results).on_conflict_do_nothing(), rows)
            insert_embeddings(conn, self.db, items, ts)
            close_finished_batches(conn, self.db.dialect, list(by_id))

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
            insert_embeddings(conn, self.db, [f.result for f in rows if f.result is not None], ts)

    def fail(self, request_id: str, code: str, message: str, image_hash: str | None = None) -> None:
        """Mark a request failed with a reason; a finished request (done or failed) stays as it is."""
        r = t.inference_requests
        with self.db.engine.begin() as conn:
            conn.execute(
                update(r)
                .where(r.c.request_id == request_id, r.c.status.not_in(TERMINAL))
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


def _result_row(item: CompletedItem, ts: datetime, cache_hit: bool | None = None) -> dict[str, Any]:
    return {
        "request_id": item.request_id,
        "model_id": item.model_id,
        "model_version": item.model_version,
        "labels": [lbl.to_dict() for lbl in item.labels],
        "threshold_applied": item.threshold_applied,
        "cache_hit": item.cache_hit if cache_hit is None else cache_hit,
        "raw_output_path": item.raw_output_uri,
        "created_at": ts,
    }
