"""The result cache: the in-process LRU, the encoding, and the Redis adapter degrading when no Redis answers."""

from __future__ import annotations

import json
import socket
import time

import pytest
from prometheus_client import REGISTRY

from runners.stack.ports import free_ports
from tests.contracts.cache import LABELS, TTL, ResultCacheContract
from transforms.adapters.redis import RedisResultCache
from transforms.cache import (
    CacheKey,
    MemoryResultCache,
    ResultCache,
    encode_result,
)
from transforms.handlers.base import Label


def redis_errors(op: str, component: str = "result cache") -> float:
    return REGISTRY.get_sample_value("imgrec_redis_errors_total", {"component": component, "op": op}) or 0.0


@pytest.fixture
def cache() -> ResultCache:
    return MemoryResultCache(TTL, max_entries=100)


class TestMemoryResultCache(ResultCacheContract):
    pass


def test_compression_pays_off_on_a_label_array() -> None:
    many = [Label(f"label_{i % 40}", 1.0 / (i + 1), [float(i), 2.0, 3.0, 4.0]) for i in range(100)]
    plain = json.dumps([label.to_dict() for label in many], separators=(",", ":")).encode()
    assert len(encode_result(many)) < len(plain) / 2


def test_memory_ttl_expires() -> None:
    now = [1000.0]
    cache = MemoryResultCache(ttl_s=60, max_entries=10, clock=lambda: now[0])
    cache.put("h", "m", "1", LABELS)
    now[0] += 59.9
    assert cache.get("h", "m", "1") is not None
    now[0] += 0.2
    assert cache.get("h", "m", "1") is None
    assert len(cache) == 0


def test_memory_lru_evicts_least_recently_used() -> None:
    cache = MemoryResultCache(ttl_s=60, max_entries=2)
    cache.put("a", "m", "1", LABELS)
    cache.put("b", "m", "1", LABELS)
    cache.get("a", "m", "1")  # a is now the most recently used
    cache.put("c", "m", "1", LABELS)
    assert cache.get("b", "m", "1") is None
    assert cache.get("a", "m", "1") is not None
    assert cache.get("c", "m", "1") is not None


def test_lookups_are_counted() -> None:
    def sample(result: str) -> float:
        return REGISTRY.get_sample_value("imgrec_cache_lookups_total", {"result": result}) or 0.0

    cache = MemoryResultCache(ttl_s=60, max_entries=10)
    hits, misses = sample("hit"), sample("miss")
    cache.put("a", "m", "1", LABELS)
    cache.get_many([CacheKey("a", "m", "1"), CacheKey("b", "m", "1")])
    assert (sample("hit"), sample("miss")) == (hits + 1, misses + 1)


# --- Redis faults degrade to "no cache", never to an error ---


def test_redis_refusing_connections_degrades_to_misses() -> None:
    cache = RedisResultCache.from_url(f"redis://127.0.0.1:{free_ports(1)[0]}/0", TTL)
    gets, puts = redis_errors("get"), redis_errors("put")
    cache.put("h", "m", "1", LABELS)
    assert cache.get("h", "m", "1") is None
    assert cache.get_many([CacheKey("h", "m", "1")] * 3) == [None, None, None]
    assert not cache.ready()
    assert redis_errors("put") == puts + 1
    assert redis_errors("get") == gets + 2


def test_redis_that_never_answers_times_out_quickly() -> None:
    # A listening socket nobody accepts from: connects succeed, replies never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        cache = RedisResultCache.from_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", TTL)
        started = time.monotonic()
        assert cache.get("h", "m", "1") is None
        cache.put("h", "m", "1", LABELS)
        # Generous bound: two calls of a 0.25 s socket timeout, not redis-py's default of none.
        assert time.monotonic() - started < 5
