"""The batch steps on the embedded ports with the fake back end: micro-batches, dedup, cache, per-item failures."""

from __future__ import annotations

import pytest

from tests.unit.fakes import TINY, png
from transforms.backends.base import InferenceUnavailable
from transforms.batch_steps import BatchSteps
from transforms.messages import BatchItemMessage
from transforms.ports import Ports
from transforms.store import NewBatch, NewRequest

RED, BLUE = png((200, 100, 40)), png((20, 40, 220))


def message(request_id: str, uri: str, **extra: object) -> BatchItemMessage:
    return BatchItemMessage(request_id=request_id, caller_id="producer", model_id=TINY, image_uri=uri, **extra)


def status(ports: Ports, request_id: str) -> tuple[str, str | None]:
    """A request's state once the background writers have written what was handed to them."""
    ports.processing_marks.flush()
    ports.raw_outputs.flush()
    row = ports.store.requests.get(request_id)
    assert row is not None
    return row["status"], row["error_code"]


def test_misses_share_micro_batches_identical_images_run_once_and_repeats_hit_the_cache(ports: Ports) -> None:
    ports.settings.micro_batch_size = 2
    red, blue = ports.blobs.put("claims/red.png", RED), ports.blobs.put("claims/blue.png", BLUE)
    steps = BatchSteps(ports)
    outcomes = steps.run([message(f"m-{i}", uri) for i, uri in enumerate([red, blue, red, blue, red])])
    # Five misses in groups of two: each group infers its distinct images once.
    assert ports.backend.batches == [(TINY, 2), (TINY, 2), (TINY, 1)]
    assert [o.labels[0].label for o in outcomes] == ["red", "blue", "red", "blue", "red"]
    assert not any(o.cache_hit for o in outcomes)
    assert [status(ports, f"m-{i}") for i in range(5)] == [("done", None)] * 5

    again = steps.run([message("m-5", blue)])
    assert [o.cache_hit for o in again] == [True] and len(ports.backend.batches) == 3


def test_each_item_keeps_its_own_threshold(ports: Ports) -> None:
    red = ports.blobs.put("claims/red.png", RED)
    BatchSteps(ports).run(
        [message("t-0", red, confidence_threshold=0.0), message("t-1", red, confidence_threshold=0.99,
                                                                 min_label_count=0)]
    )
    everything, nothing = (ports.store.requests.get(f"t-{i}") for i in range(2))
    assert everything is not None and nothing is not None
    assert [label["label"] for label in everything["labels"]] == ["red", "green", "blue"]
    assert nothing["labels"] == [] and nothing["threshold_applied"] == 0.99


def test_bad_items_fail_with_a_code_and_bad_messages_are_skipped(ports: Ports) -> None:
    garbage = ports.blobs.put("claims/garbage.png", b"not an image")
    steps = BatchSteps(ports)
    outcomes = steps.run([
        b'{"schema": "imgrec.batch_item/v1"}',
        message("b-0", garbage),
        message("b-1", f"{ports.blobs.put('claims/x', b'')}-missing"),
        message("b-2", ports.blobs.put("claims/red.png", RED)).model_copy(update={"model_id": "no-such-model"}),
    ])
    assert outcomes == []
    assert [status(ports, f"b-{i}") for i in range(3)] == [
        ("failed", "not_an_image"), ("failed", "blob_not_found"), ("failed", "unknown_model")]
    assert ports.backend.batches == []


def test_an_unavailable_back_end_is_retried_then_raised_for_a_replay(ports: Ports) -> None:
    ports.settings = ports.settings.model_copy(update={"dependency_retry_s": 0.5})  # the outage budget
    ports.backend.available = False
    red = ports.blobs.put("claims/red.png", RED)
    with pytest.raises(InferenceUnavailable):
        BatchSteps(ports).run([message("u-0", red)])
    assert ports.backend.refused >= 2, "retried within the budget before giving up"
    assert status(ports, "u-0") == ("processing", None), "left for the replay, not failed"
    ports.backend.available = True
    BatchSteps(ports).run([message("u-0", red)])
    assert status(ports, "u-0") == ("done", None)


def test_a_batch_is_announced_once_when_the_store_has_closed_it(ports: Ports) -> None:
    steps = BatchSteps(ports)
    requests = [NewRequest(f"w-{i}", "producer", TINY, batch_id="w", item_index=i) for i in range(2)]
    ports.store.batches.create(NewBatch("w", "producer", None, []), requests)
    watch, event = steps.answered("w", None)
    assert (watch.total, watch.seen, event) == (2, 1, None)
    watch, event = steps.answered("w", watch)  # an answer repeated (a redelivery) before the batch closed
    assert watch.due and event is None
    ports.store.requests.fail("w-0", "not_an_image", "no")
    ports.store.requests.fail("w-1", "not_an_image", "no")
    closed, event = steps.answered("w", watch)
    assert event is not None and (event.status, event.failed_count, event.total_count) == ("failed", 2, 2)
    assert steps.answered("w", closed)[1] is None  # once
    # Replayed from a checkpoint taken before the event: the watch of that checkpoint decides again.
    assert steps.answered("w", watch)[1] == event
    unknown, event = steps.answered("nobody-knows", None)
    assert unknown.total is None and event is None and not steps.answered("nobody-knows", unknown)[0].due
