"""Version routes cached in a real Redis: the layout, refills, and promotions every router sees."""

from __future__ import annotations

import pytest
import redis

from tests.contracts.routing import Registry, VersionRouterContract, router, unique
from transforms.adapters.redis import RedisRouteStore
from transforms.composition import make_router
from transforms.routing import MemoryRouteStore, RouteEntry, RouteStore, route_key
from transforms.settings import Settings


@pytest.fixture
def store(redis_conn: redis.Redis) -> RouteStore:
    return RedisRouteStore(redis_conn)


class TestRedisRoutes(VersionRouterContract):
    pass


def test_redis_layout_and_ttl(redis_conn: redis.Redis) -> None:
    model = unique("det")
    r = router(RedisRouteStore(redis_conn), Registry(det=RouteEntry("3", "4", 0.05)))
    r.resolve(model)
    key = route_key(model)
    assert key == f"model:active:{model}"
    assert redis_conn.hgetall(key) == {b"version": b"3", b"canary_version": b"4", b"canary_weight": b"0.05"}
    assert 55 <= redis_conn.ttl(key) <= 60


def test_deleted_redis_key_is_refilled(redis_conn: redis.Redis) -> None:
    model = unique("m")
    registry = Registry(m=RouteEntry("v1"))
    r = router(RedisRouteStore(redis_conn), registry)
    r.resolve(model)
    redis_conn.delete(route_key(model))
    assert r.resolve(model) == "v1"
    assert registry.reads == 2


def test_malformed_redis_entry_is_refilled(redis_conn: redis.Redis) -> None:
    model = unique("m")
    redis_conn.hset(route_key(model), mapping={"version": "x", "canary_weight": "lots"})
    assert router(RedisRouteStore(redis_conn), Registry(m=RouteEntry("v1"))).resolve(model) == "v1"


def test_promotion_is_seen_by_every_router_sharing_redis(redis_conn: redis.Redis) -> None:
    model = unique("m")
    registry = Registry(m=RouteEntry("v1"))
    first, second = router(RedisRouteStore(redis_conn), registry), router(RedisRouteStore(redis_conn), registry)
    assert second.resolve(model) == "v1"
    first.promote(model, "v2")
    assert second.resolve(model) == "v2"


def test_make_router_follows_settings(redis_url: str) -> None:
    registry = Registry(m=RouteEntry("v1"))
    assert isinstance(make_router(Settings(redis_url=None), registry).store, MemoryRouteStore)
    routed = make_router(Settings(redis_url=redis_url), registry)
    assert isinstance(routed.store, RedisRouteStore)
    assert routed.ttl_s == 60
    assert routed.resolve(unique("m")) == "v1"
