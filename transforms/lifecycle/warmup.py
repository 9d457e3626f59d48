"""Warm promotion: before traffic moves to a new version, its results for the model's most requested images are
computed through the batch path (the queue: Kafka -> Flink, or the embedded workers), so the result cache already
holds them when the route changes.

The images are the top N by request rows over a window (their bytes are read again from the blob store, where the
sync path keeps a content-addressed copy of each image it inferred, or from the batch item's own reference).
Progress is the share of those images whose entry for the new version is in the cache; the warm-up ends when all
are there or at the deadline, whichever comes first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from transforms.batch_queue import BatchQueue
from transforms.cache import CacheKey, ResultCache
from transforms.handlers.base import ModelVersion
from transforms.lifecycle.ports import LifecycleStore
from transforms.messages import BatchItemMessage

WARMUP_CALLER = "model-warmup"  # request rows of warm-ups; never counted among the popular images


@dataclass(frozen=True)
class WarmOptions:
    top_n: int
    window: timedelta = timedelta(hours=24)
    deadline_s: float = 300.0


@dataclass(frozen=True)
class WarmProgress:
    """Where a warm-up stands: `cached` of `total` popular images hold the new version's result."""

    total: int
    cached: int
    queued: int
    without_image: int
    seconds: float
    timed_out: bool = False

    @property
    def complete(self) -> bool:
        return self.cached >= self.total

    def to_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "cached": self.cached,
            "queued": self.queued,
            "without_image": self.without_image,
            "seconds": round(self.seconds, 1),
            "timed_out": self.timed_out,
        }


class CacheWarmer:
    """Queues the popular images of a model for one version and waits until their results are cached."""

    def __init__(
        self,
        store: LifecycleStore,
        cache: ResultCache,
        queue: BatchQueue,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.cache = cache
        self.queue = queue
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep

    def warm(
        self, model: ModelVersion, options: WarmOptions, progress: Callable[[WarmProgress], None] = lambda _: None
    ) -> WarmProgress:
        """Warm the cache for `model` (a version not yet serving); returns the final progress."""
        started = self.clock()
        popular = self.store.popular_images(model.model_id, options.window, options.top_n, WARMUP_CALLER)
        readable = [p for p in popular if p.image_uri]
        keys = {p.image_hash: CacheKey(p.image_hash, model.model_id, model.version) for p in readable}
        missing = self._missing(keys)
        submitted_at = datetime.now(UTC).isoformat()
        messages = [
            BatchItemMessage(
                request_id=f"warm-{uuid.uuid4().hex}",
                caller_id=WARMUP_CALLER,
                model_id=model.model_id,
                model_version=model.version,
                image_uri=p.image_uri or "",
                submitted_at=submitted_at,
            )
            for p in readable
            if p.image_hash in missing
        ]
        if messages:
            self.queue.publish(messages)
        without_image = len(popular) - len(readable)
        while True:
            missing = self._missing({h: keys[h] for h in missing})
            state = WarmProgress(
                len(popular), len(readable) - len(missing), len(messages), without_image, self.clock() - started
            )
            if not missing:
                progress(state)
                return state
            if state.seconds >= options.deadline_s:
                state = replace(state, timed_out=True)
                progress(state)
                return state
            progress(state)
            self.sleep(self.poll_s)

    def _missing(self, keys: dict[str, CacheKey]) -> set[str]:
        hashes = list(keys)
        found = self.cache.get_many([keys[h] for h in hashes])
        return {h for h, result in zip(hashes, found, strict=True) if result is None}
