"""The `Store` port (`transforms/store.py`) over SQLAlchemy Core: one implementation for PostgreSQL and SQLite.

Every write of the batch path is idempotent on a natural key, so a replay after a restart changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, case, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from transforms.adapters.sql import tables as t
from transforms.handlers.base import Label, ModelVersion
from transforms.keys import hash_key
from transforms.messages import BatchItemMessage
from transforms.store import ApiKey, BatchSummary, CompletedItem, FinishedRequest, NewRequest

TERMINAL = ("done", "failed")


def now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """The `Store` port in SQL: PostgreSQL (the stack) or SQLite (the embedded default)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        """Open a store; SQLite gets WAL and a busy timeout so worker threads and the API can share it."""
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

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except Exception:
            return False

    # --- model registry ---
    def seed_registry(self, models: Iterable[ModelVersion]) -> None:
        """Insert registry rows that are not there yet (existing rows, e.g. promotions, are kept)."""
        rows = [
            {
                "model_id": m.model_id,
                "version": m.version,
                "handler": m.handler,
                "artifact_s3_path": m.artifact_uri,
                "framework": m.framework,
                "input_shape": list(m.input_shape),
                "default_confidence_threshold": m.default_confidence_threshold,
                "min_label_count": m.min_label_count,
                "is_active": m.is_active,
                "canary_weight": m.canary_weight,
                "extra": m.extra,
                "created_at": now(),
            }
            for m in models
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self._dialect.insert(t.model_registry).on_conflict_do_nothing(), rows)

    def get_model_versions(self, model_id: str | None = None) -> list[ModelVersion]:
        """All versions of one model (or of every model), active first."""
        q = select(t.model_registry).order_by(t.model_registry.c.model_id, t.model_registry.c.is_active.desc())
        if model_id is not None:
            q = q.where(t.model_registry.c.model_id == model_id)
        with self.engine.connect() as conn:
            return [_model_version(r._mapping) for r in conn.execute(q)]

    def set_route(self, model_id: str, active: str, canary: str | None = None, canary_weight: float = 0.0) -> None:
        """Make `active` the active version and `canary` (if any) the canary with `canary_weight`."""
        reg = t.model_registry
        with self.engine.begin() as conn:
            conn.execute(
                update(reg)
                .where(reg.c.model_id == model_id)
                .values(
                    is_active=reg.c.version == active,
                    canary_weight=case((reg.c.version == canary, canary_weight), else_=0.0),
                )
            )

    # --- callers and API keys ---
    def create_api_key(self, caller_id: str) -> str:
        """Create the caller if new and return a fresh API key (only its hash is stored)."""
        key = "irk_" + secrets.token_urlsafe(32)
        self.add_api_key(caller_id, key)
        return key

    def add_api_key(self, caller_id: str, key: str) -> None:
        """Register `key` for `caller_id`, creating the caller (and its webhook secret) if new."""
        with self.engine.begin() as conn:
            conn.execute(
                self._dialect.insert(t.callers)
                .values(caller_id=caller_id, webhook_secret=secrets.token_hex(32), created_at=now())
                .on_conflict_do_nothing()
            )
            conn.execute(t.api_keys.insert().values(key_hash=hash_key(key), caller_id=caller_id, created_at=now()))

    def caller_for_key(self, key: str) -> str | None:
        """The caller an API key belongs to, or None when unknown or revoked."""
        k = t.api_keys
        q = select(k.c.caller_id).where(k.c.key_hash == hash_key(key), k.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one_or_none()

    def api_keys(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included)."""
        k = t.api_keys
        q = select(k.c.key_hash, k.c.caller_id, k.c.created_at, k.c.revoked_at).order_by(k.c.created_at)
        with self.engine.connect() as conn:
            return [ApiKey(*row) for row in conn.execute(q)]

    def revoke_api_key(self, key_hash: str) -> bool:
        """Stamp the key revoked; False when it was unknown or already revoked."""
        k = t.api_keys
        with self.engine.begin() as conn:
            done = conn.execute(
                update(k).where(k.c.key_hash == key_hash, k.c.revoked_at.is_(None)).values(revoked_at=now())
            )
        return bool(done.rowcount)

    def webhook_secret(self, caller_id: str) -> str | None:
        with self.engine.connect() as conn:
            q = select(t.callers.c.webhook_secret).where(t.callers.c.caller_id == caller_id)
            return conn.execute(q).scalar_one_or_none()

    # --- requests and results ---
    def create_requests(self, requests: Sequence[NewRequest]) -> None:
        """Insert request rows; existing request_ids are left as they are."""
        if not requests:
            return
        ts = now()
        rows = [{**r.__dict__, "submitted_at": ts} for r in requests]
        with self.engine.begin() as conn:
            conn.execute(self._dialect.insert(t.inference_requests).on_conflict_do_nothing(), rows)

    def ensure_requests(self, msgs: Sequence[BatchItemMessage]) -> None:
        """Create the request rows of messages written straight to Kafka (no-op for rows the API created)."""
        self.create_requests([NewRequest.from_message(m) for m in msgs])

    def ensure_request(self, msg: BatchItemMessage) -> None:
        """Single-message form of `ensure_requests`."""
        self.ensure_requests([msg])

    def mark_processing(self, request_ids: Sequence[str]) -> None:
        """pending -> processing (other states are left alone, so a replay cannot move a request back)."""
        r = t.inference_requests
        with self.engine.begin() as conn:
            conn.execute(
                update(r).where(r.c.request_id.in_(request_ids), r.c.status == "pending").values(status="processing")
            )

    def complete_request(
        self,
        request_id: str,
        model_id: str,
        model_version: str,
        image_hash: str,
        labels: Sequence[Label],
        raw_output_uri: str | None,
        cache_hit: bool,
        threshold_applied: float | None = None,
    ) -> None:
        """Upsert the result and mark the request done; idempotent on (request_id, model_id, model_version)."""
        self.complete_requests(
            [
                CompletedItem(
                    request_id,
                    model_id,
                    model_version,
                    image_hash,
                    labels,
                    raw_output_uri,
                    cache_hit,
                    threshold_applied,
                )
            ]
        )

    def complete_requests(self, items: Sequence[CompletedItem]) -> None:
        """Batch form of `complete_request`: one transaction for a whole micro-batch."""
        if not items:
            return
        ts = now()
        res = t.inference_results
        stmt = self._dialect.insert(res)
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
        with self.engine.begin() as conn:
            conn.execute(stmt, [_result_row(i, ts) for i in items])
            # One executemany (a pipelined batch on psycopg), not a round trip per item.
            conn.execute(done, [{"rid": i.request_id, "ihash": i.image_hash} for i in items])
            self._close_finished_batches(conn, [i.request_id for i in items])

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
        with self.engine.begin() as conn:
            conn.execute(t.inference_requests.insert(), requests)
            if results:
                conn.execute(t.inference_results.insert(), results)

    def fail_request(self, request_id: str, code: str, message: str, image_hash: str | None = None) -> None:
        """Mark a request failed with a reason; a request already done stays done."""
        r = t.inference_requests
        with self.engine.begin() as conn:
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
            self._close_finished_batches(conn, [request_id])

    def get_request(self, request_id: str) -> dict[str, Any] | None:
        """A request row joined with its result, if any."""
        q = (
            select(
                t.inference_requests,
                t.inference_results.c.model_version,
                t.inference_results.c.labels,
                t.inference_results.c.cache_hit,
                t.inference_results.c.raw_output_path,
                t.inference_results.c.threshold_applied,
            )
            .select_from(
                t.inference_requests.outerjoin(
                    t.inference_results, t.inference_results.c.request_id == t.inference_requests.c.request_id
                )
            )
            .where(t.inference_requests.c.request_id == request_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None

    # --- batches ---
    def create_batch(
        self,
        batch_id: str,
        caller_id: str,
        requests: Sequence[NewRequest],
        callback_url: str | None,
        rejected: list[dict[str, Any]],
    ) -> None:
        """Write the batch and its request rows in one transaction."""
        ts = now()
        rows = [{**r.__dict__, "submitted_at": ts} for r in requests]
        with self.engine.begin() as conn:
            conn.execute(
                t.batches.insert().values(
                    batch_id=batch_id,
                    caller_id=caller_id,
                    total_count=len(requests),
                    rejected=rejected,
                    callback_url=callback_url,
                    created_at=ts,
                )
            )
            conn.execute(t.inference_requests.insert(), rows)

    def batch_summary(self, batch_id: str) -> BatchSummary | None:
        """Counts by state for one batch."""
        with self.engine.connect() as conn:
            return self._summary(conn, batch_id)

    def batch_results(self, batch_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """One page of a batch's items in item order, with labels or error."""
        r, res = t.inference_requests, t.inference_results
        q = (
            select(
                r.c.request_id,
                r.c.item_index,
                r.c.status,
                r.c.model_id,
                r.c.error_code,
                r.c.error_message,
                res.c.model_version,
                res.c.labels,
                res.c.cache_hit,
                res.c.threshold_applied,
            )
            .select_from(r.outerjoin(res, res.c.request_id == r.c.request_id))
            .where(r.c.batch_id == batch_id)
            .order_by(r.c.item_index)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    def pending_backlog(self) -> int:
        """Requests not yet finished, across all callers (for completion estimates)."""
        r = t.inference_requests
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(r.c.status.in_(("pending", "processing")))).scalar_one()

    def open_batches(self) -> tuple[int, datetime | None]:
        """Batches with items still to finish: how many, and when the oldest of them was submitted (UTC)."""
        b = t.batches
        with self.engine.connect() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(b.c.created_at)).where(b.c.completed_at.is_(None), b.c.total_count > 0)
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return count, oldest

    def recent_throughput(self, window_s: int) -> float | None:
        """Requests finished per second over the last `window_s` seconds, None when nothing finished."""
        r = t.inference_requests
        since = now() - timedelta(seconds=window_s)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.min(r.c.completed_at)).where(
                    r.c.completed_at >= since, r.c.batch_id.is_not(None)
                )
            ).one()
        count, first = row
        if not count or first is None:
            return None
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
        return count / max((now() - first).total_seconds(), 1.0)

    def _summary(self, conn: Connection, batch_id: str) -> BatchSummary | None:
        b = conn.execute(select(t.batches).where(t.batches.c.batch_id == batch_id)).first()
        if b is None:
            return None
        r = t.inference_requests
        counts = dict(
            conn.execute(select(r.c.status, func.count()).where(r.c.batch_id == batch_id).group_by(r.c.status)).all()
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

    def _close_finished_batches(self, conn: Connection, request_ids: Sequence[str]) -> None:
        """Stamp batches whose last item just finished and queue their webhook, exactly once."""
        r = t.inference_requests
        batch_ids = (
            conn.execute(
                select(r.c.batch_id).distinct().where(r.c.request_id.in_(request_ids), r.c.batch_id.is_not(None))
            )
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
                    self._dialect.insert(t.webhook_outbox)
                    .values(batch_id=batch_id, url=locked.callback_url, attempts=0, next_attempt_at=ts, created_at=ts)
                    .on_conflict_do_nothing()
                )

    # --- webhook outbox ---
    def due_webhooks(self, limit: int = 20) -> list[dict[str, Any]]:
        """Undelivered webhooks whose next attempt is due."""
        o = t.webhook_outbox
        q = (
            select(o, t.batches.c.caller_id)
            .select_from(o.join(t.batches, t.batches.c.batch_id == o.c.batch_id))
            .where(o.c.delivered_at.is_(None), o.c.gave_up_at.is_(None), o.c.next_attempt_at <= now())
            .order_by(o.c.next_attempt_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    def record_webhook_attempt(
        self, batch_id: str, status_code: int | None, error: str | None, delivered: bool, retry_in: timedelta | None
    ) -> None:
        """Record one delivery attempt; schedule the next one or give up when `retry_in` is None."""
        o = t.webhook_outbox
        ts = now()
        values: dict[str, Any] = {"attempts": o.c.attempts + 1}
        if delivered:
            values["delivered_at"] = ts
        elif retry_in is None:
            values["gave_up_at"] = ts
        else:
            values["next_attempt_at"] = ts + retry_in
        with self.engine.begin() as conn:
            conn.execute(
                t.webhook_attempts.insert().values(
                    batch_id=batch_id, attempted_at=ts, status_code=status_code, error=error
                )
            )
            conn.execute(update(o).where(o.c.batch_id == batch_id).values(**values))

    def webhook_attempts(self, batch_id: str) -> list[dict[str, Any]]:
        a = t.webhook_attempts
        with self.engine.connect() as conn:
            q = select(a).where(a.c.batch_id == batch_id).order_by(a.c.id)
            return [dict(row._mapping) for row in conn.execute(q)]


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


def _model_version(m: Any) -> ModelVersion:
    return ModelVersion(
        model_id=m["model_id"],
        version=m["version"],
        handler=m["handler"],
        artifact_uri=m["artifact_s3_path"],
        framework=m["framework"],
        input_shape=list(m["input_shape"]),
        default_confidence_threshold=m["default_confidence_threshold"],
        min_label_count=m["min_label_count"],
        is_active=m["is_active"],
        canary_weight=m["canary_weight"],
        extra=dict(m["extra"] or {}),
    )


__all__ = ["SqlStore"]
