"""What every `ResultCache` keeps: labels and boxes at cache precision, per (image, model, version)."""

from __future__ import annotations

import time

import numpy as np

from transforms.cache import CachedResult, CacheKey, ResultCache
from transforms.handlers.base import Label

LABELS = [Label("cat", 0.91234567), Label("dog", 0.05), Label("person", 0.4, [1.5, 2.25, 300.0, 400.125])]
ROUNDED = [Label.from_dict(label.to_dict()) for label in LABELS]  # what the cache stores: 6-place scores
TTL = 7 * 24 * 3600


def unique(name: str) -> str:
    """An image hash no other test (or earlier run against a reused stack) has written."""
    return f"{name}-{time.time_ns()}"


class ResultCacheContract:
    """Run against a `cache` fixture."""

    def test_round_trip_keeps_labels_and_boxes(self, cache: ResultCache) -> None:
        image = unique("round-trip")
        assert cache.get(image, "m", "v1") is None
        cache.put(image, "m", "v1", LABELS)
        assert cache.get(image, "m", "v1") == CachedResult(ROUNDED)
        assert ROUNDED[0].score == 0.912346 and ROUNDED[2].bounding_box == [1.5, 2.25, 300.0, 400.12]
        # Another version or model is another entry.
        assert cache.get(image, "m", "v2") is None
        assert cache.get(image, "other", "v1") is None

    def test_empty_label_list_is_a_hit(self, cache: ResultCache) -> None:
        image = unique("empty")
        cache.put(image, "detector", "1", [])
        assert cache.get(image, "detector", "1") == CachedResult([])

    def test_get_many_and_put_many(self, cache: ResultCache) -> None:
        a, b, c = (CacheKey(unique(n), "m", "1") for n in "abc")
        cache.put_many([(a, CachedResult(LABELS[:1])), (c, CachedResult(LABELS[1:2]))])
        first, third = CachedResult(ROUNDED[:1]), CachedResult(ROUNDED[1:2])
        assert cache.get_many([a, b, c, a]) == [first, None, third, first]
        assert cache.get_many([]) == []

    def test_embedding_kept_exactly_beside_the_labels(self, cache: ResultCache) -> None:
        image = unique("embedding")
        vector = np.random.default_rng(0).standard_normal(1280).astype(np.float32)
        cache.put(image, "image-embedding", "1", [], vector)
        hit = cache.get(image, "image-embedding", "1")
        assert hit is not None and hit.labels == []
        assert hit.embedding is not None and hit.embedding.dtype == np.float32
        assert np.array_equal(hit.embedding, vector)
