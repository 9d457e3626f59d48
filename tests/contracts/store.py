"""What the SQL store does on both engines it serves, SQLite (embedded) and PostgreSQL: run against a `store`
fixture seeded with `MODEL`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from transforms.adapters.sql import SqlStore
from transforms.handlers.base import Label, ModelVersion
from transforms.messages import BatchItemMessage
from transforms.store import NewRequest

MODEL = ModelVersion(
    model_id="m",
    version="1",
    handler="classifier",
    artifact_uri="file:///x.onnx",
    framework="onnx",
    input_shape=[3, 8, 8],
    default_confidence_threshold=0.3,
    min_label_count=1,
)


def _batch(store: SqlStore, n: int, callback: str | None = "http://hook.example/cb") -> tuple[str, list[str]]:
    batch_id = uuid.uuid4().hex
    ids = [uuid.uuid4().hex for _ in range(n)]
    reqs = [NewRequest(rid, "alice", "m", batch_id=batch_id, item_index=i) for i, rid in enumerate(ids)]
    store.create_batch(batch_id, "alice", reqs, callback, [{"index": n, "code": "bad_base64", "message": "x"}])
    return batch_id, ids


class StoreContract:
    """Run against a `store` fixture (a migrated, empty database with `MODEL` seeded)."""

    def test_registry_seed_is_idempotent_and_routes(self, store: SqlStore) -> None:
        store.seed_registry([MODEL, ModelVersion(**{**MODEL.__dict__, "version": "2", "is_active": False})])
        versions = store.get_model_versions("m")
        assert [v.version for v in versions] == ["1", "2"]
        store.set_route("m", active="1", canary="2", canary_weight=0.05)
        by_version = {v.version: v for v in store.get_model_versions("m")}
        assert by_version["1"].is_active and not by_version["2"].is_active
        assert by_version["2"].canary_weight == pytest.approx(0.05)
        store.seed_registry([MODEL])  # a re-seed never undoes a promotion
        assert {v.version: v.canary_weight for v in store.get_model_versions("m")}["2"] == pytest.approx(0.05)

    def test_api_keys_are_hashed_and_resolve_to_their_caller(self, store: SqlStore) -> None:
        key = store.create_api_key("alice")
        assert store.caller_for_key(key) == "alice"
        assert store.caller_for_key(key + "x") is None
        with store.engine.connect() as conn:
            stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
        assert key not in stored and len(stored[0]) == 64
        assert store.webhook_secret("alice")

    def test_batch_progress_follows_state_transitions_and_replays_change_nothing(self, store: SqlStore) -> None:
        batch_id, ids = _batch(store, 3)
        summary = store.batch_summary(batch_id)
        assert (summary.status, summary.total_count, summary.rejected[0]["code"]) == ("pending", 3, "bad_base64")
        store.mark_processing(ids[:2])
        labels = [Label("cat", 0.9), Label("dog", 0.1, [1, 2, 3, 4])]
        for raw in ("file:///raw", None):  # a replay (even one served from the cache) changes nothing
            store.complete_request(ids[0], "m", "1", "h0", labels, raw, cache_hit=False, threshold_applied=0.3)
        assert store.get_request(ids[0])["raw_output_path"] == "file:///raw"
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM inference_results")).scalar_one() == 1
        summary = store.batch_summary(batch_id)
        assert (summary.status, summary.completed_count, summary.processing) == ("processing", 1, 1)
        store.fail_request(ids[1], "not_an_image", "bad bytes")
        store.fail_request(ids[0], "late", "a failure after success is ignored")
        assert store.due_webhooks() == []
        store.complete_request(ids[2], "m", "1", "h2", [], None, cache_hit=True)
        summary = store.batch_summary(batch_id)
        assert (summary.status, summary.completed_count, summary.failed_count) == ("partially_failed", 2, 1)
        assert summary.completed_at is not None
        rows = store.batch_results(batch_id, 0, 10)
        assert [r["item_index"] for r in rows] == [0, 1, 2]
        assert rows[0]["labels"][1]["bounding_box"] == [1, 2, 3, 4]
        assert rows[1]["error_code"] == "not_an_image" and rows[1]["labels"] is None
        assert store.batch_results(batch_id, 2, 10)[0]["request_id"] == ids[2]
        due = store.due_webhooks()
        assert [(d["batch_id"], d["caller_id"]) for d in due] == [(batch_id, "alice")]
        store.complete_request(ids[2], "m", "1", "h2", [], None, cache_hit=True)  # replay: still one outbox row
        assert len(store.due_webhooks()) == 1

    def test_webhook_outbox_backoff_and_delivery(self, store: SqlStore) -> None:
        batch_id, ids = _batch(store, 1)
        store.complete_request(ids[0], "m", "1", "h", [Label("a", 1.0)], None, cache_hit=False)
        store.record_webhook_attempt(batch_id, 500, "HTTP 500", delivered=False, retry_in=timedelta(hours=1))
        assert store.due_webhooks() == []
        store.record_webhook_attempt(batch_id, 200, None, delivered=True, retry_in=None)
        assert [a["status_code"] for a in store.webhook_attempts(batch_id)] == [500, 200]

    def test_all_failed_and_all_done_statuses(self, store: SqlStore) -> None:
        failed_batch, ids = _batch(store, 2, callback=None)
        for rid in ids:
            store.fail_request(rid, "x", "y")
        assert store.batch_summary(failed_batch).status == "failed"
        done_batch, ids = _batch(store, 2, callback=None)
        for rid in ids:
            store.complete_request(rid, "m", "1", "h", [], None, cache_hit=False)
        assert store.batch_summary(done_batch).status == "done"
        assert store.due_webhooks() == []  # no callback_url, no webhook
        assert store.recent_throughput(60) > 0

    def test_ensure_request_for_direct_kafka_producers(self, store: SqlStore) -> None:
        msg = BatchItemMessage(request_id="r-1", caller_id="bob", model_id="m", image_uri="file:///i.png")
        other = BatchItemMessage(request_id="r-2", caller_id="bob", model_id="m", image_uri="file:///j.png")
        store.ensure_requests([msg, other])
        store.ensure_request(msg)
        assert store.get_request("r-2")["status"] == "pending"
        row = store.get_request("r-1")
        assert (row["caller_id"], row["status"], row["labels"]) == ("bob", "pending", None)
        store.complete_request("r-1", "m", "1", "h", [Label("a", 0.5)], None, cache_hit=False)
        assert store.get_request("r-1")["status"] == "done"
