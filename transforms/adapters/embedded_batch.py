"""The embedded default's batch executor: worker threads drain the in-process queue through `BatchSteps`.

It stands in for Kafka + Flink in `make run`: same steps, same store writes, same cache.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from transforms.batch_queue import InProcessBatchQueue
from transforms.batch_steps import BatchSteps
from transforms.messages import BatchItemMessage
from transforms.ports import Ports
from transforms.retry import OUTAGES

log = logging.getLogger(__name__)
REQUEUE_DELAY_S = 2.0
MAX_UNEXPECTED_FAILURES = 3


class EmbeddedBatchRunner:
    """`settings.batch_workers` threads, each pulling up to one micro-batch at a time."""

    def __init__(self, ports: Ports, source: InProcessBatchQueue) -> None:
        self.settings = ports.settings
        self.source = source
        self.steps = BatchSteps(ports)
        self._failures: dict[str, int] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(max(1, self.settings.batch_workers)):
            thread = threading.Thread(target=self._work, name=f"batch-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _pull(self) -> list[BatchItemMessage]:
        """Block briefly for one message, then gather more until the micro-batch is full or the wait is over."""
        try:
            messages = [self.source.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.settings.micro_batch_max_wait_ms / 1000
        while len(messages) < self.settings.micro_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                messages.append(self.source.queue.get(timeout=remaining))
            except queue.Empty:
                break
        return messages

    def _work(self) -> None:
        while not self._stop.is_set():
            messages = self._pull()
            if not messages:
                continue
            try:
                self.steps.run(messages)
            except OUTAGES as exc:
                # Never drop a submitted image: put the micro-batch back and try again later.
                log.warning("a dependency is unavailable (%s); requeueing %d items", exc, len(messages))
                time.sleep(REQUEUE_DELAY_S)
                self.source.publish(messages)
            except Exception:
                log.exception("batch worker failed on %d items", len(messages))
                self._retry_or_fail(messages)

    def _retry_or_fail(self, messages: list[BatchItemMessage]) -> None:
        """Requeue after an unexpected error; an item that keeps failing is marked failed, not retried forever."""
        retry = []
        for m in messages:
            self._failures[m.request_id] = self._failures.get(m.request_id, 0) + 1
            if self._failures[m.request_id] < MAX_UNEXPECTED_FAILURES:
                retry.append(m)
            else:
                self._failures.pop(m.request_id)
                self.steps.ports.store.requests.fail(m.request_id, "internal_error", "The item failed repeatedly.")
        time.sleep(REQUEUE_DELAY_S)
        self.source.publish(retry)
