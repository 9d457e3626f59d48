"""The result cache in a real Redis: the shared layout, encoding and TTL, and riding out an outage."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import lz4.frame
import pytest
import redis

from runners.stack.ports import free_ports
from tests.contracts.cache import LABELS, ROUNDED, TTL, ResultCacheContract, unique
from tests.unit.test_cache import redis_errors
from transforms.adapters.redis import RedisResultCache
from transforms.cache import CachedResult, MemoryResultCache, ResultCache, decode_result
from transforms.composition import make_cache
from transforms.settings import Settings


@pytest.fixture
def cache(redis_conn: redis.Redis) -> ResultCache:
    return RedisResultCache(redis_conn, TTL)


class TestRedisResultCache(ResultCacheContract):
    pass


def test_redis_layout_encoding_and_ttl(redis_conn: redis.Redis) -> None:
    cache = RedisResultCache(redis_conn, TTL)
    image = unique("layout")
    cache.put(image, "scene", "2024-01", LABELS)
    key = f"result:{image}:scene:2024-01"
    raw = redis_conn.get(key)
    assert raw is not None
    assert json.loads(lz4.frame.decompress(raw)) == [label.to_dict() for label in LABELS]
    assert TTL - 5 <= redis_conn.ttl(key) <= TTL
    # One value is readable by every process: a second client sees it.
    assert RedisResultCache(redis_conn, TTL).get(image, "scene", "2024-01") == decode_result(raw)


def test_unreadable_redis_value_is_a_miss(redis_conn: redis.Redis) -> None:
    cache = RedisResultCache(redis_conn, TTL)
    image = unique("garbage")
    redis_conn.set(f"result:{image}:m:1", b"not lz4")
    before = redis_errors("decode")
    assert cache.get(image, "m", "1") is None
    assert redis_errors("decode") == before + 1


def test_make_cache_follows_settings(redis_url: str) -> None:
    assert isinstance(make_cache(Settings(redis_url=None)), MemoryResultCache)
    cache = make_cache(Settings(redis_url=redis_url))
    assert isinstance(cache, RedisResultCache)
    assert cache.ready()


class PrivateRedis:
    """A Redis of one test's own, so the test may stop and restart it on the same port."""

    def __init__(self) -> None:
        self.port = free_ports(1)[0]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(200):
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def test_redis_outage_then_recovery(private_redis: PrivateRedis) -> None:
    cache = RedisResultCache.from_url(private_redis.url, TTL)
    cache.put("h", "m", "1", LABELS)
    assert cache.get("h", "m", "1") is not None

    private_redis.stop()
    assert cache.get("h", "m", "1") is None  # down: a miss, no exception
    cache.put("h", "m", "1", LABELS)  # down: skipped, no exception
    assert not cache.ready()

    private_redis.start()
    cache.put("h", "m", "1", LABELS)
    assert cache.get("h", "m", "1") == CachedResult(ROUNDED)

    # A restart between two calls leaves a stale pooled connection: it is replaced without a miss.
    private_redis.stop()
    private_redis.start()
    cache.put("h", "m", "1", LABELS[:1])
    assert cache.get("h", "m", "1") == CachedResult(ROUNDED[:1])
