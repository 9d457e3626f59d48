"""The bounded background writer: batches, flush, backpressure, retries, and nothing lost on a clean close."""

from __future__ import annotations

import threading
import time

import pytest

from transforms.background import BackgroundWriter


class Recorder:
    """A write function that records each call's items, optionally failing first or waiting for a gate."""

    def __init__(self, failures: int = 0, gate: threading.Event | None = None, delay_s: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.failures = failures
        self.gate = gate
        self.delay_s = delay_s

    def __call__(self, items) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay_s)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("dependency down")
        self.calls.append(list(items))

    @property
    def written(self) -> list[int]:
        return [i for call in self.calls for i in call]


def test_items_are_written_in_batches_in_order_and_flush_waits_for_them() -> None:
    rec = Recorder(delay_s=0.01)
    writer = BackgroundWriter("test-batches", rec, max_batch=50, linger_s=0.05)
    for i in range(200):
        writer.submit(i)
    assert writer.flush(timeout_s=10)
    assert rec.written == list(range(200))
    assert len(rec.calls) < 200 and max(len(c) for c in rec.calls) <= 50
    writer.close()


def test_close_writes_everything_still_queued() -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)
    writer = BackgroundWriter("test-close", rec, max_batch=10, linger_s=0.0)
    for i in range(35):
        writer.submit(i)
    assert rec.written == []  # the first write waits at the gate: everything is still queued
    gate.set()
    writer.close()
    assert rec.written == list(range(35))


def test_a_failing_dependency_delays_items_but_loses_none() -> None:
    rec = Recorder(failures=2)
    writer = BackgroundWriter("test-retry", rec, max_batch=100, linger_s=0.0)
    for i in range(5):
        writer.submit(i)
    writer.close()
    assert sorted(rec.written) == list(range(5))


def test_a_full_queue_makes_submit_wait_instead_of_dropping() -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)
    writer = BackgroundWriter("test-full", rec, max_batch=1, linger_s=0.0, max_pending=2)
    for i in range(3):  # one taken by the thread (held at the gate), two fill the queue
        writer.submit(i)
    time.sleep(0.05)
    done = threading.Event()
    threading.Thread(target=lambda: (writer.submit(3), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # blocked while the queue is full
    gate.set()
    assert done.wait(10)
    writer.close()
    assert rec.written == [0, 1, 2, 3]


def test_submit_after_close_is_refused() -> None:
    writer = BackgroundWriter("test-closed", Recorder())
    writer.close()
    with pytest.raises(RuntimeError):
        writer.submit(1)
