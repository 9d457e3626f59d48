"""Result cache: key layout, LZ4 JSON values, TTL, LRU, batch lookups, and degrading when Redis fails."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import lz4.frame
import pytest
import redis
from prometheus_client import REGISTRY

from runners.stack.ports import free_ports
from transforms.adapters.redis import RedisResultCache
from transforms.cache import (
    CacheKey,
    MemoryResultCache,
    ResultCache,
    decode_labels,
    encode_labels,
)
from transforms.composition import make_cache
from transforms.handlers.base import Label
from transforms.settings import Settings

LABELS = [Label("cat", 0.91234567), Label("dog", 0.05), Label("person", 0.4, [1.5, 2.25, 300.0, 400.125])]
ROUNDED = [Label.from_dict(label.to_dict()) for label in LABELS]  # what the cache stores: 6-place scores
TTL = 7 * 24 * 3600


def redis_errors(op: str, component: str = "result cache") -> float:
    return REGISTRY.get_sample_value("imgrec_redis_errors_total", {"component": component, "op": op}) or 0.0


@pytest.fixture(params=["redis", "memory"])
def cache(request: pytest.FixtureRequest) -> ResultCache:
    if request.param == "redis":
        return RedisResultCache(request.getfixturevalue("redis_conn"), TTL)
    return MemoryResultCache(TTL, max_entries=100)


def unique(name: str) -> str:
    """An image hash no other test (or earlier run against a reused stack) has written."""
    return f"{name}-{time.time_ns()}"


def test_round_trip_keeps_labels_and_boxes(cache: ResultCache) -> None:
    image = unique("round-trip")
    assert cache.get(image, "m", "v1") is None
    cache.put(image, "m", "v1", LABELS)
    assert cache.get(image, "m", "v1") == ROUNDED
    assert ROUNDED[0].score == 0.912346 and ROUNDED[2].bounding_box == [1.5, 2.25, 300.0, 400.12]
    # Another version or model is another entry.
    assert cache.get(image, "m", "v2") is None
    assert cache.get(image, "other", "v1") is None


def test_empty_label_list_is_a_hit(cache: ResultCache) -> None:
    image = unique("empty")
    cache.put(image, "detector", "1", [])
    assert cache.get(image, "detector", "1") == []


def test_get_many_and_put_many(cache: ResultCache) -> None:
    a, b, c = (CacheKey(unique(n), "m", "1") for n in "abc")
    cache.put_many([(a, LABELS[:1]), (c, LABELS[1:2])])
    assert cache.get_many([a, b, c, a]) == [ROUNDED[:1], None, ROUNDED[1:2], ROUNDED[:1]]
    assert cache.get_many([]) == []


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
    assert RedisResultCache(redis_conn, TTL).get(image, "scene", "2024-01") == decode_labels(raw)


def test_compression_pays_off_on_a_label_array() -> None:
    many = [Label(f"label_{i % 40}", 1.0 / (i + 1), [float(i), 2.0, 3.0, 4.0]) for i in range(100)]
    plain = json.dumps([label.to_dict() for label in many], separators=(",", ":")).encode()
    assert len(encode_labels(many)) < len(plain) / 2


def test_unreadable_redis_value_is_a_miss(redis_conn: redis.Redis) -> None:
    cache = RedisResultCache(redis_conn, TTL)
    image = unique("garbage")
    redis_conn.set(f"result:{image}:m:1", b"not lz4")
    before = redis_errors("decode")
    assert cache.get(image, "m", "1") is None
    assert redis_errors("decode") == before + 1


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


def test_make_cache_follows_settings(redis_url: str) -> None:
    assert isinstance(make_cache(Settings(redis_url=None)), MemoryResultCache)
    cache = make_cache(Settings(redis_url=redis_url))
    assert isinstance(cache, RedisResultCache)
    assert cache.ready()


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
    assert cache.get("h", "m", "1") == ROUNDED

    # A restart between two calls leaves a stale pooled connection: it is replaced without a miss.
    private_redis.stop()
    private_redis.start()
    cache.put("h", "m", "1", LABELS[:1])
    assert cache.get("h", "m", "1") == ROUNDED[:1]
