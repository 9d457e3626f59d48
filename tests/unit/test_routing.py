"""Version routing on the in-process route cache, the canary draw, and the Redis adapter degrading without a Redis."""

from __future__ import annotations

import random

import pytest
from prometheus_client import REGISTRY

from runners.stack.ports import free_ports
from tests.contracts.routing import Registry, VersionRouterContract, router, unique
from transforms.adapters.redis import RedisRouteStore, redis_client
from transforms.errors import RecognitionError
from transforms.handlers.base import ModelVersion
from transforms.routing import (
    MemoryRouteStore,
    RouteEntry,
    RouteStore,
    route_from_versions,
)


@pytest.fixture
def store() -> RouteStore:
    return MemoryRouteStore()


class TestMemoryRoutes(VersionRouterContract):
    pass


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


def test_canary_proportion_over_many_draws() -> None:
    r = router(MemoryRouteStore(), Registry(m=RouteEntry("v1", "v2", 0.05)), rng=random.Random(20240611).random)
    model = unique("m")
    n = 20_000
    share = sum(r.resolve(model) == "v2" for _ in range(n)) / n
    sigma = (0.05 * 0.95 / n) ** 0.5
    assert abs(share - 0.05) < 4 * sigma


def test_routing_is_counted() -> None:
    r = router(MemoryRouteStore(), Registry(m=RouteEntry("v1", "v2", 0.5)), rng=iter([0.1, 0.9]).__next__)
    labels = {"model_id": "m", "version": "v2", "canary": "true"}
    before = REGISTRY.get_sample_value("imgrec_routed_total", labels) or 0.0
    r.resolve("m")
    r.resolve("m")
    assert REGISTRY.get_sample_value("imgrec_routed_total", labels) == before + 1


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
