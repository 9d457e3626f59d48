"""Accepting a batch: every item validated (bad ones listed with reasons), inline bytes stored, rows, messages."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest

from tests.unit.fakes import TINY, png
from transforms.batch_queue import InProcessBatchQueue, QueueUnavailable
from transforms.batch_submission import BatchItem, BatchSubmitter
from transforms.errors import RecognitionError
from transforms.messages import BatchItemMessage
from transforms.ports import Ports

IMAGE = base64.b64encode(png((10, 200, 10))).decode()


class DownQueue:
    """A queue that accepts nothing, like Kafka while the broker is down."""

    def publish(self, messages: Sequence[BatchItemMessage]) -> None:
        raise QueueUnavailable("broker down")

    def ready(self) -> bool:
        return False

    def close(self) -> None:
        pass


def submitter(ports: Ports, queue: object) -> BatchSubmitter:
    return BatchSubmitter(ports.settings, ports.store, ports.catalog, ports.blobs, queue, ports.fetcher)  # type: ignore[arg-type]


def drain(queue: InProcessBatchQueue) -> list[BatchItemMessage]:
    out = []
    while not queue.queue.empty():
        out.append(queue.queue.get_nowait())
    return out


def test_good_items_are_queued_by_reference_and_bad_ones_listed(ports: Ports) -> None:
    queue = InProcessBatchQueue()
    items = [
        BatchItem(model_id=TINY, image_data=IMAGE, confidence_threshold=0.2),
        BatchItem(model_id=TINY, image_url="https://images.example.com/1.jpg"),
        BatchItem(model_id="no-such-model", image_data=IMAGE),
        BatchItem(model_id=TINY, image_data=IMAGE, confidence_threshold=1.5),
        BatchItem(model_id=TINY),
        BatchItem(model_id=TINY, image_data=IMAGE, image_url="https://images.example.com/2.jpg"),
        BatchItem(model_id=TINY, image_url="file:///etc/passwd"),
        BatchItem(model_id=TINY, image_data="not base64!"),
    ]
    batch = submitter(ports, queue).submit("alice", items, "https://hooks.example.com/done")
    assert batch.accepted_count == 2
    assert [(r["index"], r["code"]) for r in batch.rejected] == [
        (2, "unknown_model"), (3, "bad_threshold"), (4, "no_image"), (5, "url_and_data"), (6, "bad_url"),
        (7, "bad_base64"),
    ]
    inline, url = drain(queue)
    assert ports.blobs.get(inline.image_uri) == base64.b64decode(IMAGE), "inline bytes travel as a claim check"
    assert url.image_uri == "https://images.example.com/1.jpg"
    assert (inline.batch_id, inline.item_index, inline.caller_id, inline.confidence_threshold) == (
        batch.batch_id, 0, "alice", 0.2)
    summary = ports.store.batches.summary(batch.batch_id)
    assert summary is not None
    assert (summary.total_count, summary.status, summary.callback_url) == (2, "pending", "https://hooks.example.com/done")
    assert summary.rejected == batch.rejected
    assert batch.estimated_completion_seconds > 0


def test_a_batch_with_no_valid_item_is_refused_whole(ports: Ports) -> None:
    queue = InProcessBatchQueue()
    with pytest.raises(RecognitionError) as info:
        submitter(ports, queue).submit("alice", [BatchItem(model_id="nope", image_data=IMAGE)], None)
    assert (info.value.code, info.value.http_status) == ("no_valid_items", 422)
    assert drain(queue) == []


def test_limits_and_a_bad_callback_are_refused_before_anything_is_written(ports: Ports) -> None:
    queue = InProcessBatchQueue()
    ports.settings.batch_max_items = 2
    three = [BatchItem(model_id=TINY, image_data=IMAGE)] * 3
    with pytest.raises(RecognitionError) as too_many:
        submitter(ports, queue).submit("alice", three, None)
    assert (too_many.value.code, too_many.value.http_status) == ("batch_too_large", 413)
    with pytest.raises(RecognitionError) as callback:
        submitter(ports, queue).submit("alice", three[:1], "ftp://hooks.example.com/")
    assert (callback.value.code, callback.value.http_status) == ("bad_url", 400)
    assert drain(queue) == [] and ports.store.batches.pending_backlog() == 0


def test_a_queue_outage_fails_the_rows_it_wrote_and_raises(ports: Ports) -> None:
    with pytest.raises(QueueUnavailable):
        submitter(ports, DownQueue()).submit("alice", [BatchItem(model_id=TINY, image_data=IMAGE)], None)
    assert ports.store.batches.pending_backlog() == 0, "nothing is left pending that would never progress"
