"""What the version router does over every `RouteStore`: fill on a miss, canary draws, promotion."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from transforms.errors import RecognitionError
from transforms.routing import RouteEntry, RouteStore, VersionRouter


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


def router(store: RouteStore, registry: Registry, rng: Callable[[], float] = random.random) -> VersionRouter:
    return VersionRouter(store, registry, ttl_s=60, rng=rng)


class VersionRouterContract:
    """Run against a `store` fixture (the route cache)."""

    def test_resolves_the_active_version_and_caches_it(self, store: RouteStore) -> None:
        registry = Registry(scene=RouteEntry("v1"))
        r = router(store, registry)
        model = unique("scene")
        assert [r.resolve(model) for _ in range(5)] == ["v1"] * 5
        assert registry.reads == 1

    def test_unknown_model_is_404_and_not_cached(self, store: RouteStore) -> None:
        registry = Registry()
        r = router(store, registry)
        for _ in range(2):
            with pytest.raises(RecognitionError) as info:
                r.resolve("nope")
            assert (info.value.code, info.value.http_status) == ("unknown_model", 404)
        assert registry.reads == 2

    def test_canary_draw_below_weight(self, store: RouteStore) -> None:
        draws = iter([0.0, 0.0499, 0.05, 0.9])
        r = router(store, Registry(m=RouteEntry("v1", "v2", 0.05)), rng=lambda: next(draws))
        model = unique("m")
        assert [r.resolve(model) for _ in range(4)] == ["v2", "v2", "v1", "v1"]

    def test_no_draw_without_a_canary(self, store: RouteStore) -> None:
        def never() -> float:
            raise AssertionError("the RNG is not drawn without a canary")

        assert router(store, Registry(m=RouteEntry("v1")), rng=never).resolve(unique("m")) == "v1"

    def test_promote_and_canary_lifecycle(self, store: RouteStore) -> None:
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

    @pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
    def test_bad_canary_weight(self, store: RouteStore, weight: float) -> None:
        r = router(store, Registry(m=RouteEntry("v1")))
        with pytest.raises(RecognitionError) as info:
            r.set_canary(unique("m"), "v2", weight)
        assert (info.value.code, info.value.http_status) == ("bad_canary_weight", 422)

    def test_set_canary_on_unknown_model(self, store: RouteStore) -> None:
        with pytest.raises(RecognitionError) as info:
            router(store, Registry()).set_canary("nope", "v2", 0.1)
        assert info.value.code == "unknown_model"
