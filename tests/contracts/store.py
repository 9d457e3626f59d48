"""What the SQL store does on both engines it serves, SQLite (embedded) and PostgreSQL: run against a `store`
fixture seeded with `MODEL`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from transforms.adapters.sql import SqlStore
from transforms.handlers.base import Label, ModelVersion
from transforms.messages import BatchItemMessage
from transforms.store import CompletedItem, FinishedRequest, IdempotencyKeyTaken, NewBatch, NewRequest

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
    rejected = [{"index": n, "code": "bad_base64", "message": "x"}]
    store.batches.create(NewBatch(batch_id, "alice", callback, rejected), reqs)
    return batch_id, ids


def _complete(
    store: SqlStore, request_id: str, labels: list[Label] | None = None, raw: str | None = None, cache_hit: bool = False
) -> None:
    store.requests.complete([CompletedItem(request_id, "m", "1", "h", labels or [], raw, cache_hit=cache_hit)])


class StoreContract:
    """Run against a `store` fixture (a migrated, empty database with `MODEL` seeded)."""

    def test_registry_seed_is_idempotent_and_routes(self, store: SqlStore) -> None:
        store.registry.seed([MODEL, ModelVersion(**{**MODEL.__dict__, "version": "2", "is_active": False})])
        versions = store.registry.versions("m")
        assert [v.version for v in versions] == ["1", "2"]
        store.registry.set_route("m", active="1", canary="2", canary_weight=0.05)
        by_version = {v.version: v for v in store.registry.versions("m")}
        assert by_version["1"].is_active and not by_version["2"].is_active
        assert by_version["2"].canary_weight == pytest.approx(0.05)
        store.registry.seed([MODEL])  # a re-seed never undoes a promotion
        assert {v.version: v.canary_weight for v in store.registry.versions("m")}["2"] == pytest.approx(0.05)

    def test_api_keys_are_hashed_and_resolve_to_their_caller(self, store: SqlStore) -> None:
        key = store.keys.create("alice")
        assert store.keys.caller_for(key) == "alice"
        assert store.keys.caller_for(key + "x") is None
        with store.engine.connect() as conn:
            stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
        assert key not in stored and len(stored[0]) == 64
        assert store.keys.webhook_secret("alice")

    def test_batch_progress_follows_state_transitions_and_replays_change_nothing(self, store: SqlStore) -> None:
        batch_id, ids = _batch(store, 3)
        summary = store.batches.summary(batch_id)
        assert (summary.status, summary.total_count, summary.rejected[0]["code"]) == ("pending", 3, "bad_base64")
        store.requests.mark_processing(ids[:2])
        labels = [Label("cat", 0.9), Label("dog", 0.1, [1, 2, 3, 4])]
        for raw in ("file:///raw", None):  # a replay (even one served from the cache) changes nothing
            store.requests.complete([CompletedItem(ids[0], "m", "1", "h0", labels, raw, False, threshold_applied=0.3)])
        assert store.requests.get(ids[0])["raw_output_path"] == "file:///raw"
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM inference_results")).scalar_one() == 1
        summary = store.batches.summary(batch_id)
        assert (summary.status, summary.completed_count, summary.processing) == ("processing", 1, 1)
        store.requests.fail(ids[1], "not_an_image", "bad bytes")
        store.requests.fail(ids[0], "late", "a failure after success is ignored")
        assert store.outbox.due() == []
        store.requests.complete([CompletedItem(ids[2], "m", "1", "h2", [], None, cache_hit=True)])
        summary = store.batches.summary(batch_id)
        assert (summary.status, summary.completed_count, summary.failed_count) == ("partially_failed", 2, 1)
        assert summary.completed_at is not None
        rows = store.batches.results(batch_id, 0, 10)
        assert [r["item_index"] for r in rows] == [0, 1, 2]
        assert rows[0]["labels"][1]["bounding_box"] == [1, 2, 3, 4]
        assert rows[1]["error_code"] == "not_an_image" and rows[1]["labels"] is None
        assert store.batches.results(batch_id, 2, 10)[0]["request_id"] == ids[2]
        due = store.outbox.due()
        assert [(d["batch_id"], d["caller_id"]) for d in due] == [(batch_id, "alice")]
        # A replay: still one outbox row.
        store.requests.complete([CompletedItem(ids[2], "m", "1", "h2", [], None, cache_hit=True)])
        assert len(store.outbox.due()) == 1

    def test_webhook_outbox_backoff_and_delivery(self, store: SqlStore) -> None:
        batch_id, ids = _batch(store, 1)
        store.requests.complete([CompletedItem(ids[0], "m", "1", "h", [Label("a", 1.0)], None, cache_hit=False)])
        store.outbox.record_attempt(batch_id, 500, "HTTP 500", delivered=False, retry_in=timedelta(hours=1))
        assert store.outbox.due() == []
        store.outbox.record_attempt(batch_id, 200, None, delivered=True, retry_in=None)
        assert [a["status_code"] for a in store.outbox.attempts(batch_id)] == [500, 200]

    def test_all_failed_and_all_done_statuses(self, store: SqlStore) -> None:
        failed_batch, ids = _batch(store, 2, callback=None)
        for rid in ids:
            store.requests.fail(rid, "x", "y")
        assert store.batches.summary(failed_batch).status == "failed"
        done_batch, ids = _batch(store, 2, callback=None)
        for rid in ids:
            store.requests.complete([CompletedItem(rid, "m", "1", "h", [], None, cache_hit=False)])
        assert store.batches.summary(done_batch).status == "done"
        assert store.outbox.due() == []  # no callback_url, no webhook
        assert store.batches.recent_throughput(60) > 0

    def test_ensure_request_for_direct_kafka_producers(self, store: SqlStore) -> None:
        msg = BatchItemMessage(request_id="r-1", caller_id="bob", model_id="m", image_uri="file:///i.png")
        other = BatchItemMessage(request_id="r-2", caller_id="bob", model_id="m", image_uri="file:///j.png")
        store.requests.ensure([msg, other])
        store.requests.ensure([msg])
        assert store.requests.get("r-2")["status"] == "pending"
        row = store.requests.get("r-1")
        assert (row["caller_id"], row["status"], row["labels"]) == ("bob", "pending", None)
        store.requests.complete([CompletedItem("r-1", "m", "1", "h", [Label("a", 0.5)], None, cache_hit=False)])
        assert store.requests.get("r-1")["status"] == "done"

    def test_a_direct_message_joins_only_its_own_callers_existing_batch(self, store: SqlStore) -> None:
        batch_id, _ = _batch(store, 1, callback=None)  # alice's
        messages = {
            "own": BatchItemMessage(request_id="d-1", caller_id="alice", model_id="m", image_uri="file:///a.png",
                                    batch_id=batch_id, item_index=5),
            "another caller's": BatchItemMessage(request_id="d-2", caller_id="bob", model_id="m",
                                                 image_uri="file:///b.png", batch_id=batch_id, item_index=6),
            "unknown": BatchItemMessage(request_id="d-3", caller_id="alice", model_id="m", image_uri="file:///c.png",
                                        batch_id="no-such-batch"),
        }  # fmt: skip
        store.requests.ensure(list(messages.values()))
        joined = {name: store.requests.get(m.request_id)["batch_id"] for name, m in messages.items()}
        assert joined == {"own": batch_id, "another caller's": None, "unknown": None}

    def test_vectors_are_written_with_results_once_and_seen_only_through_the_callers_requests(
        self, store: SqlStore
    ) -> None:
        rng = np.random.default_rng(1)
        a, b, c = (rng.random(16, dtype=np.float32) for _ in range(3))
        batch_id, ids = _batch(store, 2, callback=None)  # alice's batch
        store.requests.complete(
            [
                CompletedItem(ids[0], "m", "1", "ha", [], None, False, embedding=a),
                CompletedItem(ids[1], "m", "1", "hb", [Label("x", 0.9)], None, False, embedding=b),
            ]
        )
        # A replay with another vector changes nothing: an image's vector through one version is written once.
        store.requests.complete([CompletedItem(ids[0], "m", "1", "ha", [], None, False, embedding=c)])
        assert np.array_equal(store.embeddings.vectors(["ha"], "m", "1")["ha"], a)
        assert store.embeddings.vectors(["ha"], "m", "2") == {}
        # Bob's sync request of image hb (another model) and of his own image hc.
        finished = [
            FinishedRequest(NewRequest(rid, "bob", model, image_hash=h), CompletedItem(rid, model, "1", h, [], None,
                            False, embedding=e))
            for rid, model, h, e in (("r-b1", "other", "hb", None), ("r-b2", "m", "hc", c))
        ]  # fmt: skip
        store.requests.insert_finished(finished)
        assert store.embeddings.caller_hashes("alice", "m", "1") == {"ha", "hb"}
        assert store.embeddings.caller_hashes("bob", "m", "1") == {"hb", "hc"}  # he sent hb too, for another model
        assert store.embeddings.caller_hashes("carol", "m", "1") == set()
        assert store.embeddings.caller_hashes("alice", "m", "2") == set()
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert store.embeddings.caller_hashes("alice", "m", "1", since=later) == set()
        vectors = store.embeddings.vectors(["ha", "hb", "hc", "nope"], "m", "1")
        assert set(vectors) == {"ha", "hb", "hc"} and np.array_equal(vectors["hb"], b)
        images = store.embeddings.caller_images("bob", ["ha", "hb", "hc"])
        assert set(images) == {"hb", "hc"} and images["hb"].request_id == "r-b1"
        assert store.embeddings.caller_images("alice", ["hb"])["hb"].labels == {"m": [{"label": "x", "score": 0.9}]}
        results = store.batches.results(batch_id, 0, 10)
        assert np.array_equal(results[0]["embedding"], a) and np.array_equal(results[1]["embedding"], b)

    def test_a_replay_that_finds_its_own_result_in_the_cache_is_not_a_hit(self, store: SqlStore) -> None:
        _, ids = _batch(store, 3, callback=None)
        store.requests.mark_processing(ids[:1])  # the first attempt of ids[0] went to inference, then the job crashed
        # The replay finds the cache entry that first attempt wrote; ids[1] never reached inference: a real hit.
        _complete(store, ids[0], [Label("a", 0.9)], None, cache_hit=True)
        _complete(store, ids[1], [Label("a", 0.9)], None, cache_hit=True)
        assert store.requests.get(ids[0])["cache_hit"] is False
        assert store.requests.get(ids[1])["cache_hit"] is True
        # A later replay of a finished item changes nothing, whatever it found.
        _complete(store, ids[1], [Label("b", 0.1)], "file:///raw", cache_hit=False)
        row = store.requests.get(ids[1])
        assert (row["cache_hit"], row["labels"][0]["label"], row["raw_output_path"]) == (True, "a", None)

    def test_finished_states_are_final_so_counts_never_move_backwards(self, store: SqlStore) -> None:
        batch_id, ids = _batch(store, 2, callback=None)
        store.requests.fail(ids[0], "url_fetch_failed", "first attempt failed")
        _complete(store, ids[0])  # a replay that succeeds
        _complete(store, ids[1])
        store.requests.fail(ids[1], "late", "a replay that fails")
        summary = store.batches.summary(batch_id)
        assert (summary.completed_count, summary.failed_count) == (1, 1)
        assert store.requests.get(ids[0])["labels"] is None  # no result row for the failed item
        with store.engine.connect() as conn:
            orphans = conn.execute(text(
                "SELECT count(*) FROM inference_requests r LEFT JOIN inference_results s USING (request_id) "
                "WHERE r.status = 'done' AND s.request_id IS NULL")).scalar_one()
        assert orphans == 0

    def test_a_webhook_is_claimed_by_one_replica_until_its_lease_runs_out(self, store: SqlStore) -> None:
        batch_id, ids = _batch(store, 1)
        _complete(store, ids[0])
        first = store.outbox.claim("replica-a", timedelta(minutes=1))
        assert [row["batch_id"] for row in first] == [batch_id] and first[0]["delivery_id"]
        assert store.outbox.claim("replica-b", timedelta(minutes=1)) == []
        assert store.outbox.due() == []
        # replica-a dies; after its lease another replica takes the row over, with the same delivery id.
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE webhook_outbox SET lease_until = created_at"))
        taken = store.outbox.claim("replica-b", timedelta(minutes=1))
        assert [(row["batch_id"], row["delivery_id"]) for row in taken] == [(batch_id, first[0]["delivery_id"])]
        assert store.outbox.record_attempt(batch_id, 200, None, True, None, owner="replica-a") is False
        assert store.outbox.record_attempt(batch_id, 200, None, True, None, owner="replica-b") is True
        assert store.outbox.claim("replica-a", timedelta(0)) == []

    def test_idempotency_key_finds_the_first_batch_and_can_be_released(self, store: SqlStore) -> None:
        def batch(batch_id: str, fingerprint: str | None) -> None:
            store.batches.create(NewBatch(batch_id, "alice", None, [], "k-1", fingerprint),
                                 [NewRequest(uuid.uuid4().hex, "alice", "m", batch_id=batch_id)])

        first, second = uuid.uuid4().hex, uuid.uuid4().hex
        batch(first, "f")
        with pytest.raises(IdempotencyKeyTaken):
            batch(second, "f")
        assert store.batches.summary(second) is None
        assert store.batches.by_idempotency_key("alice", "k-1") == (first, "f")
        assert store.batches.by_idempotency_key("bob", "k-1") is None  # keys are per caller
        store.batches.release_idempotency_key(first)
        batch(second, None)
        assert store.batches.by_idempotency_key("alice", "k-1") == (second, None)
        assert store.batches.items_in_flight("alice") == 2

    def test_key_limits_default_to_none_and_can_be_set(self, store: SqlStore) -> None:
        key = store.keys.create("carol")
        record = store.keys.get(key)
        assert (record.caller_id, record.rate_per_s, record.max_concurrency) == ("carol", None, None)
        assert store.keys.set_limits(record.key_hash, rate_per_s=2.5, max_concurrency=1)
        assert (store.keys.get(key).rate_per_s, store.keys.get(key).max_concurrency) == (2.5, 1)
        assert store.keys.set_limits("nope", burst=3) is False
        with pytest.raises(ValueError):
            store.keys.set_limits(record.key_hash, colour=1)
