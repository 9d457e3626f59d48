"""Admission control on the API: what a caller may send, and what the process takes on before it sheds load.

- Rate: each API key may send `rate_per_s` sync requests per second with bursts of `burst` (the `RateLimiter`
  port: counted in Redis when configured, so every replica shares it, else in process); over it: 429
  `rate_limited` with Retry-After. A Redis outage lets requests through.
- Concurrency: at most `max_concurrency` sync requests of one key in flight in this process; over it: 429
  `too_many_concurrent_requests`.
- A bounded sync queue: `sync_concurrency` recognitions run at once, `sync_queue_size` more may wait for at most
  `sync_queue_timeout_s`; a request beyond that is shed with 503 `overloaded`, so latency stays bounded under a
  burst instead of growing with the queue.
Limits come from the key's row in `api_keys`, else the settings' defaults.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter as Metric
from starlette.concurrency import run_in_threadpool

from transforms.errors import RecognitionError
from transforms.rate_limits import RateLimiter
from transforms.settings import Settings
from transforms.store import ApiKey

REJECTED = Metric("imgrec_admission_rejected_total", "Requests refused by admission control, by reason.", ["reason"])


def limited(code: str, message: str, retry_after_s: float, status: int = 429) -> RecognitionError:
    """The refusal, with its Retry-After in whole seconds."""
    REJECTED.labels(code).inc()
    return RecognitionError(code, message, http_status=status, retry_after_s=max(1, math.ceil(retry_after_s)))


class SyncQueue:
    """`concurrency` running slots and at most `size` waiters, each waiting at most `timeout_s`."""

    def __init__(self, concurrency: int, size: int, timeout_s: float) -> None:
        self.size = size
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self.waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self.waiting >= self.size:
            raise limited("overloaded", "The service is at capacity; retry shortly.", 1, status=503)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout_s)
        except TimeoutError:
            raise limited("overloaded", "The service is at capacity; retry shortly.", 1, status=503) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


class Admission:
    """Rate and concurrency limits per API key and the bounded sync queue of one API process."""

    def __init__(self, settings: Settings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter
        self.queue = SyncQueue(settings.sync_concurrency, settings.sync_queue_size, settings.sync_queue_timeout_s)
        self._in_flight: Counter[str] = Counter()

    def _hit(self, key: ApiKey) -> float | None:
        """Count one request; None when allowed, else seconds until the key's rate allows one."""
        per_s = key.rate_per_s if key.rate_per_s is not None else self.settings.rate_limit_per_s
        burst = key.burst if key.burst is not None else self.settings.rate_limit_burst
        return self.limiter.hit(key.key_hash, per_s, burst)

    @asynccontextmanager
    async def sync_request(self, key: ApiKey) -> AsyncIterator[None]:
        """Admit one sync request of `key` (429 or 503 when not), and hold its place while it runs."""
        wait_s = await run_in_threadpool(self._hit, key)
        if wait_s is not None:
            raise limited("rate_limited", "Too many requests for this API key; slow down.", wait_s)
        most = key.max_concurrency if key.max_concurrency is not None else self.settings.max_concurrency_per_key
        if self._in_flight[key.key_hash] >= most:
            raise limited("too_many_concurrent_requests",
                          f"At most {most} requests of one API key run at once; wait for one to finish.", 1)
        self._in_flight[key.key_hash] += 1
        try:
            async with self.queue.slot():
                yield
        finally:
            self._in_flight[key.key_hash] -= 1
            if not self._in_flight[key.key_hash]:
                del self._in_flight[key.key_hash]

    def batch_items_allowed(self, key: ApiKey) -> int:
        """How many batch items the key's caller may have unfinished at once."""
        if key.max_batch_items_in_flight is not None:
            return key.max_batch_items_in_flight
        return self.settings.max_batch_items_in_flight
