"""A batch with unfinished items and no progress is reported stuck, naming the stage, and cleared once it moves."""

from __future__ import annotations

import logging
import uuid

from transforms.adapters.sql import SqlStore, upgrade
from transforms.stall_watch import STALLED, StallWatch
from transforms.store import CompletedItem, NewBatch, NewRequest


def test_a_batch_without_progress_is_reported_at_its_stage(tmp_path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    store = SqlStore.from_url(url)
    batch_id = uuid.uuid4().hex
    ids = [uuid.uuid4().hex for _ in range(3)]
    store.batches.create(NewBatch(batch_id, "c", None, []),
                         [NewRequest(r, "c", "m", batch_id=batch_id, item_index=i) for i, r in enumerate(ids)])
    clock = [0.0]
    problem: list[str | None] = [None]
    watch = StallWatch(store.batches, stall_after_s=60, job_problem=lambda: problem[0], clock=lambda: clock[0])
    assert watch.check() == {}
    clock[0] = 61
    with caplog.at_level(logging.WARNING):
        assert watch.check() == {batch_id: "before inference"}
    assert f"batch {batch_id} made no progress for 61 s: stuck at before inference" in caplog.text
    assert STALLED.labels("before inference")._value.get() == 1
    store.requests.mark_processing(ids[:1])
    clock[0] = 70
    assert watch.check() == {batch_id: "inference or sinks"}  # no item finished: still no progress
    problem[0] = "Kafka source has not been assigned partitions [0]"
    assert watch.check() == {batch_id: "batch job"}
    store.requests.complete([CompletedItem(ids[0], "m", "1", "h", [], None, cache_hit=False)])
    clock[0] = 71
    assert watch.check() == {}  # progress resets the clock
    assert STALLED.labels("batch job")._value.get() == 0
    store.close()
