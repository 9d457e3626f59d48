"""The result cache: what a model said about an image, keyed by (image_hash, model_id, version).

Key `result:{image_hash}:{model_id}:{version}`; value the model's UNthresholded labels as LZ4-compressed
(lz4.frame) JSON (an embedding model's entry is `{"labels", "embedding"}`, the vector as base64 of little-endian
float32); TTL `Settings.cache_ttl_s`. Thresholds are applied after the cache, so one entry serves every
threshold. Two implementations with the same encoding and TTL semantics: Redis (shared across processes,
`transforms/adapters/redis.py`) and the in-process LRU here (the embedded default). A Redis fault degrades to a
miss or a skipped write, logged and counted (`imgrec_redis_errors_total`), and never reaches the caller.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import lz4.frame
import numpy as np
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


@dataclass(frozen=True)
class CachedResult:
    """What a model said about an image: its labels, and its vector for an embedding model."""

    labels: list[Label]
    embedding: np.ndarray | None = None


def encode_result(labels: Sequence[Label], embedding: np.ndarray | None = None) -> bytes:
    """Labels (and a vector) -> LZ4-compressed compact JSON; labels alone stay a plain JSON list."""
    doc: Any = [label.to_dict() for label in labels]
    if embedding is not None:
        vector = base64.b64encode(np.asarray(embedding, "<f4").tobytes()).decode()
        doc = {"labels": doc, "embedding": vector}
    return lz4.frame.compress(json.dumps(doc, separators=(",", ":")).encode())


def decode_result(blob: bytes) -> CachedResult:
    """LZ4-compressed JSON -> labels and the vector, if any."""
    doc = json.loads(lz4.frame.decompress(blob))
    if isinstance(doc, list):
        return CachedResult([Label.from_dict(item) for item in doc])
    vector = np.frombuffer(base64.b64decode(doc["embedding"], validate=True), "<f4").astype(np.float32)
    return CachedResult([Label.from_dict(item) for item in doc["labels"]], vector)


class ResultCache(Protocol):
    """The result cache port."""

    def get(self, image_hash: str, model_id: str, version: str) -> CachedResult | None: ...

    def put(
        self, image_hash: str, model_id: str, version: str, labels: Sequence[Label], embedding: np.ndarray | None = None
    ) -> None: ...

    def get_many(self, keys: Sequence[CacheKey]) -> list[CachedResult | None]: ...

    def put_many(self, entries: Sequence[tuple[CacheKey, CachedResult]]) -> None: ...

    def ready(self) -> bool: ...


class EncodedCache(ABC):
    """The port over a store of compressed bytes: adapters only read and write raw values by key."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl_s = ttl_s

    def get(self, image_hash: str, model_id: str, version: str) -> CachedResult | None:
        return self.get_many([CacheKey(image_hash, model_id, version)])[0]

    def put(
        self, image_hash: str, model_id: str, version: str, labels: Sequence[Label], embedding: np.ndarray | None = None
    ) -> None:
        self.put_many([(CacheKey(image_hash, model_id, version), CachedResult(list(labels), embedding))])

    def get_many(self, keys: Sequence[CacheKey]) -> list[CachedResult | None]:
        if not keys:
            return []
        results = [self._decode(blob) for blob in self._read([key.redis_key() for key in keys])]
        hits = sum(result is not None for result in results)
        CACHE_LOOKUPS.labels("hit").inc(hits)
        CACHE_LOOKUPS.labels("miss").inc(len(results) - hits)
        return results

    def put_many(self, entries: Sequence[tuple[CacheKey, CachedResult]]) -> None:
        if entries:
            self._write([(key.redis_key(), encode_result(r.labels, r.embedding)) for key, r in entries])

    def ready(self) -> bool:
        return True

    @abstractmethod
    def _read(self, keys: list[str]) -> list[bytes | None]:
        """Raw values for keys (None where absent); never raises."""

    @abstractmethod
    def _write(self, items: list[tuple[str, bytes]]) -> None:
        """Store raw values with the TTL; never raises."""

    def _decode(self, blob: bytes | None) -> CachedResult | None:
        if blob is None:
            return None
        try:
            return decode_result(blob)
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
