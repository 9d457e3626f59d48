"""Redis: the result cache and the cache of version routes, shared by every API process and the batch pipeline.

Both go through one fast-failing client (short timeouts, no retries) and a guard that turns a Redis fault into a
logged, counted fallback, so an outage degrades (a miss, a skipped write, a registry lookup) and never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import redis

from transforms.cache import REDIS_ERRORS, EncodedCache
from transforms.errors import RecognitionError
from transforms.routing import RouteEntry

log = logging.getLogger(__name__)

# A cache hit must answer in milliseconds; a stuck Redis must not hold a request for long.
REDIS_SOCKET_TIMEOUT_S = 0.25

T = TypeVar("T")
RedisClient = redis.Redis


def redis_client(url: str) -> RedisClient:
    """A Redis client with short timeouts and no retries: a failed call degrades at once.

    (redis-py already replaces a pooled connection that the server closed before handing it out.)
    """
    timeout = REDIS_SOCKET_TIMEOUT_S
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class RedisGuard:
    """Runs one component's Redis calls: a failure is counted, logged once per outage, and a fallback returned."""

    def __init__(self, component: str) -> None:
        self.component = component
        self._down = False  # only decides which log line to write; a race costs at most one extra line

    def run(self, op: str, call: Callable[[], T], fallback: T) -> T:
        try:
            result = call()
        except (redis.RedisError, OSError) as exc:
            REDIS_ERRORS.labels(self.component, op).inc()
            if not self._down:
                self._down = True
                log.warning("redis unavailable for the %s (%s failed: %s); degrading", self.component, op, exc)
            return fallback
        if self._down:
            self._down = False
            log.info("redis available again for the %s", self.component)
        return result


class RedisResultCache(EncodedCache):
    """The cache in Redis, shared by every API process and the batch pipeline."""

    def __init__(self, client: RedisClient, ttl_s: int) -> None:
        super().__init__(ttl_s)
        self.client = client
        self.guard = RedisGuard("result cache")

    @classmethod
    def from_url(cls, url: str, ttl_s: int) -> RedisResultCache:
        return cls(redis_client(url), ttl_s)

    def _read(self, keys: list[str]) -> list[bytes | None]:
        return self.guard.run("get", lambda: self.client.mget(keys), [None] * len(keys))

    def _write(self, items: list[tuple[str, bytes]]) -> None:
        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key, blob in items:
                pipe.set(key, blob, ex=self.ttl_s)
            pipe.execute()

        self.guard.run("put", write, None)

    def ready(self) -> bool:
        return self.guard.run("ping", lambda: bool(self.client.ping()), False)


class RedisRouteStore:
    """Routes as Redis hashes (fields version, canary_version, canary_weight) with a TTL."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client
        self.guard = RedisGuard("version router")

    def load(self, key: str) -> RouteEntry | None:
        fields: dict[bytes, bytes] = self.guard.run("get", lambda: self.client.hgetall(key), {})
        if not fields.get(b"version"):
            return None
        try:
            return RouteEntry(
                fields[b"version"].decode(),
                fields.get(b"canary_version", b"").decode() or None,
                float(fields.get(b"canary_weight", b"0")),
            )
        except (ValueError, RecognitionError):
            return None  # a malformed entry (written by hand?) is refilled from the registry

    def save(self, key: str, entry: RouteEntry, ttl_s: int) -> None:
        mapping = {
            "version": entry.version,
            "canary_version": entry.canary_version or "",
            "canary_weight": repr(entry.canary_weight),
        }

        def write() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, ttl_s)
            pipe.execute()

        self.guard.run("put", write, None)
