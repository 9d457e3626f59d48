"""A bounded background writer: work that a caller need not wait for, written in batches on one thread.

`submit` queues an item and returns at once; only a full queue makes it wait (backpressure, nothing is dropped).
The thread takes what is queued, up to `max_batch` items, lingering at most `linger_s` after the first one for more
to arrive, and hands the list to `write`. A failing `write` is retried with capped backoff until it succeeds, so a
dependency that is down for a while delays the items, it does not lose them. `close()` writes everything queued
(the service's shutdown calls it); `flush()` waits for what was submitted so far.

Crash window: a process killed without shutdown (kill -9, OOM, power loss) loses what is queued, at most
`max_pending` items, plus the batch being written. Metrics, labelled by `writer`:
`imgrec_background_queue` (items waiting), `imgrec_background_written_total`, `imgrec_background_retries_total`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUED = Gauge(
    "imgrec_background_queue", "Items waiting for a background writer.", ["writer"], multiprocess_mode="livesum"
)
WRITTEN = Counter("imgrec_background_written_total", "Items a background writer has written.", ["writer"])
RETRIES = Counter("imgrec_background_retries_total", "Failed writes that a background writer retried.", ["writer"])
RETRY_DELAYS_S = (0.05, 0.2, 1.0, 5.0)  # then every 5 s until the write succeeds or `close` gives up


class _Flush:
    """A marker in the queue: set once every item before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


class BackgroundWriter(Generic[T]):
    """Runs `write(items)` on a background thread for items submitted from any thread."""

    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], None],
        *,
        max_batch: int = 256,
        linger_s: float = 0.02,
        max_pending: int = 10_000,
    ) -> None:
        self.name = name
        self._write = write
        self._max_batch = max(1, max_batch)
        self._linger_s = linger_s
        self._queue: queue.Queue[T | _Flush | None] = queue.Queue(maxsize=max(1, max_pending))
        self._stopping = threading.Event()
        self._gave_up = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"writer-{name}", daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Queue one item; waits only while `max_pending` items are already queued."""
        if self._closed:
            raise RuntimeError(f"the {self.name} writer is closed")
        self._queue.put(item)
        QUEUED.labels(self.name).inc()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything submitted before this call is written; False on timeout."""
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything queued, then stop. After `timeout_s` of failing writes, log what is lost and stop."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._gave_up.set()
            self._thread.join(RETRY_DELAYS_S[-1] + 1)
            log.error("%s writer closed with about %d items unwritten", self.name, self._queue.qsize())

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[T] = []
            stop = self._collect(first, batch)
            if batch:
                self._write_until_done(batch)
            if stop:
                return

    def _collect(self, first: T | _Flush, batch: list[T]) -> bool:
        """Gather up to max_batch items into `batch`, settling flush markers in order; True when told to stop."""
        item: T | _Flush | None = first
        deadline = time.monotonic() + self._linger_s
        while True:
            if item is None:
                return True
            if isinstance(item, _Flush):
                if batch:  # the items before the marker are written first
                    self._write_until_done(batch)
                    batch.clear()
                item.done.set()
            else:
                batch.append(item)
                if len(batch) >= self._max_batch:
                    return False
            try:
                wait = deadline - time.monotonic()
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False

    def _write_until_done(self, batch: list[T]) -> None:
        attempt = 0
        while True:
            try:
                self._write(batch)
                WRITTEN.labels(self.name).inc(len(batch))
                break
            except Exception as exc:  # any fault of the dependency: keep the items and try again
                if self._gave_up.is_set():
                    log.error("%s writer gave up on %d items: %s", self.name, len(batch), exc)
                    break
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                RETRIES.labels(self.name).inc()
                log.warning(
                    "%s writer: write of %d items failed (%s); retrying in %.2fs", self.name, len(batch), exc, delay
                )
                attempt += 1
                self._gave_up.wait(delay)
        QUEUED.labels(self.name).dec(len(batch))
