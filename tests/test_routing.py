"""Version routing over Redis and the in-process store: fill on miss, TTL, canary draws, promotion, Redis down."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
import redis
from prometheus_client import REGISTRY

from runners.stack.ports import free_ports
from transforms.adapters.redis import RedisRouteStore, redis_client
from transforms.composition import make_router
from transforms.errors import RecognitionError
from transforms.handlers.base import ModelVersion
from transforms.routing import (
    MemoryRouteStore,
    RouteEntry,
    RouteStore,
    VersionRouter,
    route_from_versions,
    route_key,
)
from transforms.settings import Settings


class Registry:
    """Stands in for the model_registry table behind the lookup, counting reads."""

    def __init__(self, **routes: RouteEntry) -> None:
        self.routes = dict(routes)
        self.reads = 0

    def __call__(self, model_id: str) -> RouteEntry | None:
        self.reads += 1
        return self.routes.get(model_id.split("#")[0])


def unique(model: str) -> str:
    """A model id no other test has cached; the registry ignores the suffix."""
    return f"{model}#{time.time_ns()}"


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> RouteStore:
    if request.param == "redis":
        return RedisRouteStore(request.getfixturevalue("redis_conn"))
    return MemoryRouteStore()


def router(store: RouteStore, registry: Registry, rng: Callable[[], float] = random.random) -> VersionRouter:
    return VersionRouter(store, registry, ttl_s=60, rng=rng)


def test_resolves_the_active_version_and_caches_it(store: RouteStore) -> None:
    registry = Registry(scene=RouteEntry("v1"))
    r = router(store, registry)
    model = unique("scene")
    assert [r.resolve(model) for _ in range(5)] == ["v1"] * 5
    assert registry.reads == 1


def test_unknown_model_is_404_and_not_cached(store: RouteStore) -> None:
    registry = Registry()
    r = router(store, registry)
    for _ in range(2):
        with pytest.raises(RecognitionError) as info:
            r.resolve("nope")
        assert (info.value.code, info.value.http_status) == ("unknown_model", 404)
    assert registry.reads == 2


def test_redis_layout_and_ttl(redis_conn: redis.Redis) -> None:
    model = unique("det")
    r = router(RedisRouteStore(redis_conn), Registry(det=RouteEntry("3", "4", 0.05)))
    r.resolve(model)
    key = route_key(model)
    assert key == f"model:active:{model}"
    assert redis_conn.hgetall(key) == {b"version": b"3", b"canary_version": b"4", b"canary_weight": b"0.05"}
    assert 55 <= redis_conn.ttl(key) <= 60


def test_an_expired_route_is_refilled_from_the_registry() -> None:
    now = [0.0]
    registry = Registry(m=RouteEntry("v1"))
    r = router(MemoryRouteStore(clock=lambda: now[0]), registry)
    r.resolve("m")
    registry.routes["m"] = RouteEntry("v2")  # promoted in the table by another process
    now[0] = 59.0
    assert r.resolve("m") == "v1"
    now[0] = 60.0
    assert r.resolve("m") == "v2"
    assert registry.reads == 2


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


def test_canary_draw_below_weight(store: RouteStore) -> None:
    draws = iter([0.0, 0.0499, 0.05, 0.9])
    r = router(store, Registry(m=RouteEntry("v1", "v2", 0.05)), rng=lambda: next(draws))
    model = unique("m")
    assert [r.resolve(model) for _ in range(4)] == ["v2", "v2", "v1", "v1"]


def test_canary_proportion_over_many_draws() -> None:
    r = router(MemoryRouteStore(), Registry(m=RouteEntry("v1", "v2", 0.05)), rng=random.Random(20240611).random)
    model = unique("m")
    n = 20_000
    share = sum(r.resolve(model) == "v2" for _ in range(n)) / n
    sigma = (0.05 * 0.95 / n) ** 0.5
    assert abs(share - 0.05) < 4 * sigma


def test_no_draw_without_a_canary(store: RouteStore) -> None:
    def never() -> float:
        raise AssertionError("the RNG is not drawn without a canary")

    assert router(store, Registry(m=RouteEntry("v1")), rng=never).resolve(unique("m")) == "v1"


def test_routing_is_counted() -> None:
    r = router(MemoryRouteStore(), Registry(m=RouteEntry("v1", "v2", 0.5)), rng=iter([0.1, 0.9]).__next__)
    labels = {"model_id": "m", "version": "v2", "canary": "true"}
    before = REGISTRY.get_sample_value("imgrec_routed_total", labels) or 0.0
    r.resolve("m")
    r.resolve("m")
    assert REGISTRY.get_sample_value("imgrec_routed_total", labels) == before + 1


def test_promote_and_canary_lifecycle(store: RouteStore) -> None:
    model = unique("m")
    r = router(store, Registry(m=RouteEntry("v1")), rng=lambda: 0.01)
    assert r.set_canary(model, "v2", 0.05) == RouteEntry("v1", "v2", 0.05)
    assert r.resolve(model) == "v2"
    # Promoting the canary ends it.
    assert r.promote(model, "v2") == RouteEntry("v2")
    assert r.resolve(model) == "v2"
    # A canary of another version survives a promotion.
    r.set_canary(model, "v3", 0.2)
    assert r.promote(model, "v2.1") == RouteEntry("v2.1", "v3", 0.2)
    # Weight 0 ends a canary.
    assert r.set_canary(model, "v3", 0.0) == RouteEntry("v2.1")
    assert r.resolve(model) == "v2.1"


def test_promotion_is_seen_by_every_router_sharing_redis(redis_conn: redis.Redis) -> None:
    model = unique("m")
    registry = Registry(m=RouteEntry("v1"))
    first, second = router(RedisRouteStore(redis_conn), registry), router(RedisRouteStore(redis_conn), registry)
    assert second.resolve(model) == "v1"
    first.promote(model, "v2")
    assert second.resolve(model) == "v2"


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
def test_bad_canary_weight(store: RouteStore, weight: float) -> None:
    r = router(store, Registry(m=RouteEntry("v1")))
    with pytest.raises(RecognitionError) as info:
        r.set_canary(unique("m"), "v2", weight)
    assert (info.value.code, info.value.http_status) == ("bad_canary_weight", 422)


def test_set_canary_on_unknown_model(store: RouteStore) -> None:
    with pytest.raises(RecognitionError) as info:
        router(store, Registry()).set_canary("nope", "v2", 0.1)
    assert info.value.code == "unknown_model"


def test_make_router_follows_settings(redis_url: str) -> None:
    registry = Registry(m=RouteEntry("v1"))
    assert isinstance(make_router(Settings(redis_url=None), registry).store, MemoryRouteStore)
    routed = make_router(Settings(redis_url=redis_url), registry)
    assert isinstance(routed.store, RedisRouteStore)
    assert routed.ttl_s == 60
    assert routed.resolve(unique("m")) == "v1"


def test_redis_down_falls_back_to_the_registry() -> None:
    port = free_ports(1)[0]  # nothing listens there
    registry = Registry(m=RouteEntry("v1", "v2", 1.0))
    r = router(RedisRouteStore(redis_client(f"redis://127.0.0.1:{port}/0")), registry)
    errors = REGISTRY.get_sample_value("imgrec_redis_errors_total", {"component": "version router", "op": "get"})
    assert [r.resolve("m") for _ in range(3)] == ["v2"] * 3
    assert registry.reads == 3  # nothing could be cached
    r.promote("m", "v3")  # the write is skipped, not raised
    with pytest.raises(RecognitionError):
        r.resolve("unknown")
    after = REGISTRY.get_sample_value("imgrec_redis_errors_total", {"component": "version router", "op": "get"})
    assert after is not None and after >= (errors or 0.0) + 3


def _row(version: str, active: bool, weight: float = 0.0) -> ModelVersion:
    return ModelVersion("m", version, "h", "model-store://m", "onnx", [1, 3, 8, 8], 0.5, 1, active, weight)


def test_route_from_registry_rows() -> None:
    assert route_from_versions([]) is None
    assert route_from_versions([_row("1", False)]) is None  # no active version: the model is not served
    assert route_from_versions([_row("2", True), _row("1", False)]) == RouteEntry("2")
    rows = [_row("2", True), _row("3", False, 0.05), _row("4", False, 0.1)]
    assert route_from_versions(rows) == RouteEntry("2", "4", 0.1)
