"""Version routing: model_id -> the version that serves this request (active, or the canary by weight).

The route of a model is cached under `model:active:{model_id}` as a Redis hash with the fields `version`
(the active version string), `canary_version` ("" when none) and `canary_weight` (a float in [0, 1]), with a
TTL of `Settings.active_version_ttl_s` (60 s). A hash keeps the three in one key, read and written atomically.
On a miss the route is filled from the registry through an injected `lookup(model_id)` (the store reads the
`model_registry` table). A draw from the RNG below `canary_weight` routes to the canary.

The cache of routes is a small key-value port: Redis (`transforms/adapters/redis.py`), or the in-process TTL map
here for the embedded default (where a promotion made by another process is seen once the entry expires, as with
Redis). A Redis fault falls back to the lookup and is never raised.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from transforms.errors import RecognitionError
from transforms.handlers.base import ModelVersion

ROUTED = Counter(
    "imgrec_routed_total", "Requests routed, by model, version and canary.", ["model_id", "version", "canary"]
)


@dataclass(frozen=True)
class RouteEntry:
    """The active version of a model and, optionally, a canary version taking `canary_weight` of the traffic."""

    version: str
    canary_version: str | None = None
    canary_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.canary_weight <= 1.0:
            raise RecognitionError("bad_canary_weight", f"canary_weight must be in [0, 1], not {self.canary_weight}.")
        if self.canary_weight > 0 and not self.canary_version:
            raise RecognitionError("bad_canary_weight", "A canary weight above 0 needs a canary version.")


Lookup = Callable[[str], RouteEntry | None]


def route_from_versions(rows: Iterable[ModelVersion]) -> RouteEntry | None:
    """The route that registry rows describe: the active version, and the heaviest inactive canary if any."""
    versions = list(rows)
    active = next((row for row in versions if row.is_active), None)
    if active is None:
        return None
    canaries = [row for row in versions if not row.is_active and row.canary_weight > 0]
    canary = max(canaries, key=lambda row: row.canary_weight, default=None)
    return RouteEntry(active.version, canary.version, canary.canary_weight) if canary else RouteEntry(active.version)


def route_key(model_id: str) -> str:
    return f"model:active:{model_id}"


class RouteStore(Protocol):
    """Where routes are cached for a short TTL. Never raises: a fault reads as a miss and skips the write."""

    def load(self, key: str) -> RouteEntry | None: ...

    def save(self, key: str, entry: RouteEntry, ttl_s: int) -> None: ...


class MemoryRouteStore:
    """Routes in an in-process map with the same TTL semantics; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, tuple[float, RouteEntry]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> RouteEntry | None:
        with self._lock:
            item = self._entries.get(key)
            if item is None or item[0] <= self.clock():
                self._entries.pop(key, None)
                return None
            return item[1]

    def save(self, key: str, entry: RouteEntry, ttl_s: float) -> None:
        with self._lock:
            self._entries[key] = (self.clock() + ttl_s, entry)


class VersionRouter:
    """Resolves model_id to a version; promote and set_canary rewrite the cached route.

    `memo_s` > 0 keeps each route in this process for that long on top of the shared cache, so a caller that
    routes every item of a stream (the batch job) reads the shared cache once per model per `memo_s`, not once per
    item. A promotion made elsewhere reaches such a process within `memo_s`; one made through this router at once.
    """

    def __init__(
        self, store: RouteStore, lookup: Lookup, ttl_s: int, rng: Callable[[], float] = random.random,
        memo_s: float = 0.0,
    ) -> None:
        self.store = store
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.rng = rng
        self.memo = MemoryRouteStore() if memo_s > 0 else None
        self.memo_s = memo_s

    def entry(self, model_id: str) -> RouteEntry:
        """The route of model_id, from the cache or else the registry; unknown_model (404) when there is none."""
        key = route_key(model_id)
        entry = self.memo.load(key) if self.memo is not None else None
        if entry is not None:
            return entry
        entry = self.store.load(key)
        if entry is None:
            entry = self.lookup(model_id)
            if entry is None:
                raise RecognitionError("unknown_model", f"There is no active model {model_id!r}.", model_id=model_id)
            self.store.save(key, entry, self.ttl_s)
        self._remember(key, entry)
        return entry

    def _remember(self, key: str, entry: RouteEntry) -> None:
        if self.memo is not None:
            self.memo.save(key, entry, self.memo_s)

    def _save(self, model_id: str, entry: RouteEntry) -> None:
        key = route_key(model_id)
        self.store.save(key, entry, self.ttl_s)
        self._remember(key, entry)

    def resolve(self, model_id: str) -> str:
        """The version that serves this request: the canary when a draw falls below its weight."""
        entry = self.entry(model_id)
        version, canary = entry.version, "false"
        if entry.canary_version is not None and self.rng() < entry.canary_weight:
            version, canary = entry.canary_version, "true"
        ROUTED.labels(model_id, version, canary).inc()
        return version

    def promote(self, model_id: str, version: str) -> RouteEntry:
        """Make `version` the active one (a canary of that same version is done; another canary stays)."""
        current = self._current(model_id)
        if current is not None and current.canary_version not in (None, version):
            entry = RouteEntry(version, current.canary_version, current.canary_weight)
        else:
            entry = RouteEntry(version)
        self._save(model_id, entry)
        return entry

    def set_route(self, model_id: str, entry: RouteEntry) -> None:
        """Replace the cached route of model_id (the registry holds the same route already)."""
        self._save(model_id, entry)

    def set_canary(self, model_id: str, version: str | None, weight: float) -> RouteEntry:
        """Send `weight` of model_id's traffic to `version`; weight 0 (or no version) ends the canary."""
        current = self.entry(model_id)
        entry = RouteEntry(current.version, version if weight > 0 else None, weight if version else 0.0)
        self._save(model_id, entry)
        return entry

    def _current(self, model_id: str) -> RouteEntry | None:
        return self.store.load(route_key(model_id)) or self.lookup(model_id)
