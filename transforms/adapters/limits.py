"""The `RateLimiter` port over the `limits` library: counters in Redis (shared by every API process) or in process.

A key's limit is a sliding window of `burst` requests over `burst / per_s` seconds. A Redis fault lets the request
through (counted in imgrec_redis_errors_total), like every other Redis fault of the service.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from transforms.adapters.redis import REDIS_SOCKET_TIMEOUT_S, RedisGuard


class LimitsRateLimiter:
    """Sliding-window counters in `storage_uri` (`redis://...` or `memory://`)."""

    def __init__(self, storage_uri: str) -> None:
        options = {}
        if storage_uri.startswith("redis"):
            options = {"socket_timeout": REDIS_SOCKET_TIMEOUT_S, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_S}
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_uri, **options))
        self.guard = RedisGuard("rate limiter")

    def hit(self, key: str, per_s: float, burst: int) -> float | None:
        item = RateLimitItemPerSecond(max(1, burst), max(1, math.ceil(burst / max(per_s, 1e-6))))
        if self.guard.run("hit", lambda: self.limiter.hit(item, key), True):
            return None
        stats = self.guard.run("stats", lambda: self.limiter.get_window_stats(item, key), None)
        return stats.reset_time - time.time() if stats else 1.0
