"""The result cache: what a model said about an image, keyed by (image_hash, model_id, version).

Key `result:{image_hash}:{model_id}:{version}`; value the model's UNthresholded labels as LZ4-compressed
(lz4.frame) JSON; TTL `Settings.cache_ttl_s`. Thresholds are applied after the cache, so one entry serves every
threshold. Two implementations with the same encoding and TTL semantics: Redis (shared across processes,
`transforms/adapters/redis.py`) and the in-process LRU here (the embedded default). A Redis fault degrades to a
miss or a skipped write, logged and counted (`imgrec_redis_errors_total`), and never reaches the caller.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import lz4.frame
from prometheus_client import Counter

from transforms.handlers.base import Label

log = logging.getLogger(__name__)

REDIS_ERRORS = Counter(
    "imgrec_redis_errors_total", "Redis calls that failed and were degraded.", ["component", "op"]
)
CACHE_LOOKUPS = Counter("imgrec_cache_lookups_total", "Result cache lookups by outcome.", ["result"])


class CacheKey(NamedTuple):
    image_hash: str
    model_id: str
    version: str

    def redis_key(self) -> str:
        return f"result:{self.image_hash}:{self.model_id}:{self.version}"


def encode_labels(labels: Sequence[Label]) -> bytes:
    """Labels -> LZ4-compressed compact JSON."""
    return lz4.frame.compress(json.dumps([label.to_dict() for label in labels], separators=(",", ":")).encode())


def decode_labels(blob: bytes) -> list[Label]:
    """LZ4-compressed JSON -> labels."""
    return [Label.from_dict(item) for item in json.loads(lz4.frame.decompress(blob))]


class ResultCache(Protocol):
    """The result cache port."""

    def get(self, image_hash: str, model_id: str, version: str) -> list[Label] | None: ...

    def put(self, image_hash: str, model_id: str, version: str, labels: Sequence[Label]) -> None: ...

    def get_many(self, keys: Sequence[CacheKey]) -> list[list[Label] | None]: ...

    def put_many(self, entries: Sequence[tuple[CacheKey, Sequence[Label]]]) -> None: ...

    def ready(self) -> bool: ...


class EncodedCache(ABC):
    """The port over a store of compressed bytes: adapters only read and write raw values by key."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl_s = ttl_s

    def get(self, image_hash: str, model_id: str, version: str) -> list[Label] | None:
        return self.get_many([CacheKey(image_hash, model_id, version)])[0]

    def put(self, image_hash: str, model_id: str, version: str, labels: Sequence[Label]) -> None:
        self.put_many([(CacheKey(image_hash, model_id, version), labels)])

    def get_many(self, keys: Sequence[CacheKey]) -> list[list[Label] | None]:
        if not keys:
            return []
        results = [self._decode(blob) for blob in self._read([key.redis_key() for key in keys])]
        hits = sum(result is not None for result in results)
        CACHE_LOOKUPS.labels("hit").inc(hits)
        CACHE_LOOKUPS.labels("miss").inc(len(results) - hits)
        return results

    def put_many(self, entries: Sequence[tuple[CacheKey, Sequence[Label]]]) -> None:
        if entries:
            self._write([(key.redis_key(), encode_labels(labels)) for key, labels in entries])

    def ready(self) -> bool:
        return True

    @abstractmethod
    def _read(self, keys: list[str]) -> list[bytes | None]:
        """Raw values for keys (None where absent); never raises."""

    @abstractmethod
    def _write(self, items: list[tuple[str, bytes]]) -> None:
        """Store raw values with the TTL; never raises."""

    def _decode(self, blob: bytes | None) -> list[Label] | None:
        if blob is None:
            return None
        try:
            return decode_labels(blob)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            # A value we cannot read is a miss; the next put overwrites it.
            REDIS_ERRORS.labels("result cache", "decode").inc()
            log.warning("unreadable result cache entry dropped: %s", exc)
            return None


class MemoryResultCache(EncodedCache):
    """An in-process LRU with the same key layout, encoding and TTL; thread-safe."""

    def __init__(self, ttl_s: int, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ttl_s)
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _read(self, keys: list[str]) -> list[bytes | None]:
        now = self.clock()
        out: list[bytes | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None or entry[0] <= now:
                    self._entries.pop(key, None)
                    out.append(None)
                else:
                    self._entries.move_to_end(key)
                    out.append(entry[1])
        return out

    def _write(self, items: list[tuple[str, bytes]]) -> None:
        expires = self.clock() + self.ttl_s
        with self._lock:
            for key, blob in items:
                self._entries[key] = (expires, blob)
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
