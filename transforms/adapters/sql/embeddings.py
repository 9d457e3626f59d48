"""Image vectors, one row per (image_hash, model_id, model_version), and the caller's view of them through its own
requests. A vector is written once: an image's vector through one model version never changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, or_, select

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now
from transforms.store import CallerImage, CompletedItem

CHUNK = 500  # image hashes per IN list (well under SQLite's bound-parameter limit)


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, "<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, "<f4").astype(np.float32)


def insert_embeddings(conn: Connection, db: Database, items: Sequence[CompletedItem], ts: datetime) -> None:
    """The vectors of finished items, inside the caller's transaction (kept when already stored)."""
    rows = {
        (i.image_hash, i.model_id, i.model_version): {
            "image_hash": i.image_hash,
            "model_id": i.model_id,
            "model_version": i.model_version,
            "dimension": int(i.embedding.size),
            "vector": to_blob(i.embedding),
            "created_at": ts,
        }
        for i in items
        if i.embedding is not None
    }
    if rows:
        conn.execute(db.dialect.insert(t.image_embeddings).on_conflict_do_nothing(), list(rows.values()))


class SqlEmbeddings:
    """The `EmbeddingStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, image_hash: str, model_id: str, model_version: str, vector: np.ndarray) -> None:
        item = CompletedItem("", model_id, model_version, image_hash, [], None, False, embedding=vector)
        with self.db.engine.begin() as conn:
            insert_embeddings(conn, self.db, [item], now())

    def vectors(self, image_hashes: Sequence[str], model_id: str, model_version: str) -> dict[str, np.ndarray]:
        e = t.image_embeddings
        wanted = sorted(set(image_hashes))
        out: dict[str, np.ndarray] = {}
        with self.db.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                q = select(e.c.image_hash, e.c.vector).where(
                    e.c.image_hash.in_(wanted[start : start + CHUNK]),
                    e.c.model_id == model_id,
                    e.c.model_version == model_version,
                )
                out.update((h, from_blob(v)) for h, v in conn.execute(q))
        return out

    def caller_hashes(
        self, caller_id: str, model_id: str, model_version: str, since: datetime | None = None
    ) -> set[str]:
        r, e = t.inference_requests, t.image_embeddings
        q = (
            select(e.c.image_hash)
            .distinct()
            .select_from(r.join(e, e.c.image_hash == r.c.image_hash))
            .where(
                r.c.caller_id == caller_id,
                r.c.status == "done",
                e.c.model_id == model_id,
                e.c.model_version == model_version,
            )
        )
        if since is not None:
            q = q.where(or_(r.c.completed_at >= since, e.c.created_at >= since))
        with self.db.engine.connect() as conn:
            return set(conn.execute(q).scalars())

    def caller_images(self, caller_id: str, image_hashes: Sequence[str]) -> dict[str, CallerImage]:
        if not image_hashes:
            return {}
        r, res = t.inference_requests, t.inference_results
        q = (
            select(r.c.image_hash, r.c.request_id, r.c.model_id, res.c.labels)
            .select_from(r.outerjoin(res, res.c.request_id == r.c.request_id))
            .where(r.c.caller_id == caller_id, r.c.status == "done", r.c.image_hash.in_(list(set(image_hashes))))
            .order_by(r.c.completed_at, r.c.request_id)
        )
        latest: dict[str, str] = {}
        labels: dict[str, dict[str, list[dict[str, Any]]]] = {}
        with self.db.engine.connect() as conn:
            for image_hash, request_id, model_id, model_labels in conn.execute(q):
                latest[image_hash] = request_id  # ordered by completion: the last one wins
                if model_labels:
                    labels.setdefault(image_hash, {})[model_id] = model_labels
        return {h: CallerImage(h, rid, labels.get(h, {})) for h, rid in latest.items()}
