"""The engine-agnostic batch steps on the embedded ports (SQLite, in-process cache, ONNX Runtime, file blobs)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from tests.api_helpers import photo_bytes
from transforms.adapters.sql import tables as t
from transforms.adapters.sql import upgrade
from transforms.batch_steps import BatchSteps
from transforms.composition import build_ports
from transforms.messages import BatchItemMessage
from transforms.model_registry import load_registry
from transforms.settings import REPO_ROOT, Settings
from transforms.store import NewBatch, NewRequest

SCENE = "scene-classification"


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("batch-steps"), model_store=REPO_ROOT / "var" / "models",
        micro_batch_size=4, _env_file=None,
    )
    upgrade(settings.resolved_database_url)
    built = BatchSteps(build_ports(settings))
    built.ports.store.registry.seed(load_registry())
    yield built
    built.close()


def message(steps: BatchSteps, request_id: str, uri: str, **extra) -> BatchItemMessage:
    return BatchItemMessage(request_id=request_id, caller_id="producer", model_id=SCENE, image_uri=uri, **extra)


def result_rows(steps: BatchSteps, prefix: str) -> list[dict]:
    r, res = t.inference_requests, t.inference_results
    q = (
        select(r.c.request_id, r.c.status, r.c.error_code, res.c.labels, res.c.cache_hit)
        .select_from(r.outerjoin(res, r.c.request_id == res.c.request_id))
        .where(r.c.request_id.like(f"{prefix}%"))
        .order_by(r.c.request_id)
    )
    with steps.ports.store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(q)]


def test_run_infers_misses_in_micro_batches_serves_repeats_from_cache_and_fails_bad_items(steps) -> None:
    coffee = steps.ports.blobs.put("claims/coffee.jpg", photo_bytes("coffee", size=160))
    cat = steps.ports.blobs.put("claims/cat.jpg", photo_bytes("chelsea", size=160))
    garbage = steps.ports.blobs.put("claims/garbage.jpg", b"not an image")
    uris = [coffee, cat, coffee, cat, coffee, garbage, f"{steps.ports.blobs.root_uri}/claims/missing.jpg"]
    raws = [message(steps, f"run-{i}", uri).to_json() for i, uri in enumerate(uris)]
    raws.insert(2, b'{"schema": "imgrec.batch_item/v1"}')  # bad: skipped, the rest go on

    outcomes = steps.run(raws)

    rows = {row["request_id"]: row for row in result_rows(steps, "run-")}
    assert [rows[f"run-{i}"]["status"] for i in range(7)] == ["done"] * 5 + ["failed"] * 2
    assert [rows[f"run-{i}"]["labels"][0]["label"] for i in (0, 2, 4)] == ["espresso"] * 3
    assert rows["run-1"]["labels"][0]["label"] == rows["run-3"]["labels"][0]["label"] != "espresso"
    assert (rows["run-5"]["error_code"], rows["run-6"]["error_code"]) == ("not_an_image", "blob_not_found")
    # Identical images in one micro-batch are inferred once; nothing was cached before this run.
    assert [o.cache_hit for o in outcomes] == [False] * 5
    assert len({o.raw_output_uri for o in outcomes}) == 2

    again = steps.run([message(steps, "run-7", cat).to_json()])
    assert [o.cache_hit for o in again] == [True]
    assert result_rows(steps, "run-7")[0]["cache_hit"] is True


def test_replaying_messages_changes_nothing(steps) -> None:
    uri = steps.ports.blobs.put("claims/rocket.jpg", photo_bytes("rocket", size=128))
    raws = [message(steps, f"replay-{i}", uri, confidence_threshold=0.0).to_json() for i in range(3)]
    steps.run(raws)
    first = result_rows(steps, "replay-")
    assert [row["status"] for row in first] == ["done"] * 3
    steps.run(raws)
    assert result_rows(steps, "replay-") == first
    res = t.inference_results
    with steps.ports.store.engine.connect() as conn:
        count = conn.execute(select(func.count()).where(res.c.request_id.like("replay-%"))).scalar_one()
    assert count == 3


def test_thresholds_apply_per_item_after_the_cache(steps) -> None:
    uri = steps.ports.blobs.put("claims/astronaut.jpg", photo_bytes("astronaut", size=128))
    low, high = message(steps, "thr-0", uri, confidence_threshold=0.0), message(steps, "thr-1", uri,
                                                                                 confidence_threshold=1.0)
    steps.run([low])
    steps.run([high])
    rows = {row["request_id"]: row for row in result_rows(steps, "thr-")}
    assert len(rows["thr-0"]["labels"]) > 1  # everything the model said (top-k)
    # Served from the cache, which holds what the model said; only this item's threshold differs.
    assert rows["thr-1"]["cache_hit"] is True
    assert rows["thr-1"]["labels"] == rows["thr-0"]["labels"][:1]  # min_label_count keeps the best one


def test_a_model_fault_fails_the_micro_batch_instead_of_replaying_it(steps) -> None:
    # A registry row whose preprocessing does not fit its network (9x9 into an 8x8 model): ONNX Runtime refuses
    # every batch. Replaying would stall the pipeline forever; the items fail with a code instead.
    tiny = next(m for m in load_registry() if m.model_id == "tiny-rgb")
    broken = dataclasses.replace(tiny, model_id="tiny-misfit", extra={**tiny.extra, "resize": 9, "crop": 9})
    steps.ports.store.registry.seed([broken])
    uri = steps.ports.blobs.put("claims/misfit.jpg", photo_bytes("coffee", size=64))
    msg = BatchItemMessage(request_id="misfit-0", caller_id="producer", model_id="tiny-misfit", image_uri=uri)
    assert steps.run([msg]) == []
    row = result_rows(steps, "misfit-")[0]
    assert (row["status"], row["error_code"], row["labels"]) == ("failed", "inference_failed", None)


def test_lookup_copies_serves_every_copy_of_a_cached_image(steps) -> None:
    uri = steps.ports.blobs.put("claims/chelsea-copies.jpg", photo_bytes("chelsea", size=96))
    copies = [steps.fetch(message(steps, f"copies-{i}", uri)) for i in range(3)]
    assert steps.lookup_copies(copies) is None
    steps.run([copies[0].msg])
    hits = steps.lookup_copies(copies)
    assert hits is not None
    assert [(h.msg.request_id, h.cache_hit) for h in hits] == [(f"copies-{i}", True) for i in range(3)]
    assert len({tuple(h.labels) for h in hits}) == 1


def test_a_producer_batch_id_joins_only_a_batch_of_its_own_caller(steps) -> None:
    # A direct producer may group its items under a batch_id the store does not know, or mistype another
    # caller's: the item is recognised as a lone request (a row that named it would break the foreign key and
    # stall the job on every replay, or count towards someone else's batch).
    store = steps.ports.store
    store.batches.create(NewBatch("theirs", "someone-else", None, []),
                         [NewRequest("their-0", "someone-else", SCENE, batch_id="theirs", item_index=0)])
    uri = steps.ports.blobs.put("claims/own-batch.jpg", photo_bytes("coffee", size=160))
    msgs = [message(steps, f"own-batch-{i}", uri, batch_id=batch_id, item_index=0)
            for i, batch_id in enumerate(("unknown", "theirs"))]
    steps.run([m.to_json() for m in msgs])
    for m in msgs:
        row = store.requests.get(m.request_id)
        assert (row["status"], row["batch_id"]) == ("done", None)
    assert store.batches.summary("theirs").total_count == 1
