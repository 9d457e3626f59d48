"""Similarity search over the images a caller has sent: one vector index per (caller, model version).

The source of truth is the store (`image_embeddings` joined with the caller's finished requests); an index is a
cache of it that is kept in memory, written to the blob store (`similarity/<model>/<version>/<caller digest>.*`)
every `similarity_save_interval_s` and at shutdown, and rebuilt from the store when its blobs are missing or
unreadable. Every search first catches up with rows written since the index was last read (by this process's
sync path, another API process or the Flink sink), so a snapshot that lags, or that another process overwrote,
loses nothing. A caller's search only ever reads that caller's index, so it never sees another caller's images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from transforms.blobs import BlobStore, BlobStoreUnavailable
from transforms.errors import RecognitionError
from transforms.handlers.base import ModelVersion
from transforms.store import EmbeddingStore
from transforms.vector_index import VectorIndex, VectorIndexFactory

log = logging.getLogger(__name__)

# Rows may land with a completion time a little before the moment a catch-up read ran (background writers linger,
# a Flink micro-batch commits after it stamped its rows, clocks differ between hosts): each catch-up re-reads this
# much history; vectors the index holds already are skipped.
CATCH_UP_OVERLAP = timedelta(minutes=2)


@dataclass(frozen=True)
class Match:
    """One earlier image of the caller: how similar, its latest request, and the labels other models gave it."""

    image_hash: str
    similarity: float
    request_id: str
    labels: dict[str, list[dict[str, Any]]]


@dataclass
class CallerIndex:
    """One caller's vectors for one model version: the ANN index plus the image hash behind each key."""

    index: VectorIndex
    hashes: list[str] = field(default_factory=list)
    since: datetime | None = None  # the next catch-up reads rows from here
    dirty: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.keys = {h: k for k, h in enumerate(self.hashes)}

    def add(self, image_hash: str, vector: np.ndarray) -> None:
        if image_hash in self.keys:
            return
        key = len(self.hashes)
        self.index.add(np.asarray([key], np.uint64), np.asarray(vector, np.float32)[None, :])
        self.hashes.append(image_hash)
        self.keys[image_hash] = key
        self.dirty = True

    def meta(self) -> dict[str, Any]:
        return {"hashes": self.hashes, "since": self.since.isoformat() if self.since else None}


def blob_base(caller_id: str, model_id: str, version: str) -> str:
    """Blob key prefix of a caller's index (the caller id hashed: it may hold any character)."""
    digest = hashlib.sha256(caller_id.encode()).hexdigest()[:32]
    return f"similarity/{model_id}/{version}/{digest}"


class SimilarityIndex:
    """Per-caller vector indexes: add (sync path), search (with catch-up from the store), persist, rebuild."""

    def __init__(
        self, store: EmbeddingStore, blobs: BlobStore, factory: VectorIndexFactory, save_interval_s: float = 30.0
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.factory = factory
        self.save_interval_s = save_interval_s
        self._indexes: dict[tuple[str, str, str], CallerIndex] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None

    # --- use ------------------------------------------------------------------------------------------------

    def add(self, caller_id: str, model: ModelVersion, image_hash: str, vector: np.ndarray) -> None:
        """Make an image the caller has just sent searchable at once (its rows are still being written)."""
        with self._open(caller_id, model) as ci:
            ci.add(image_hash, vector)

    def search(
        self,
        caller_id: str,
        model: ModelVersion,
        vector: np.ndarray,
        k: int,
        min_similarity: float = 0.0,
        exclude: str | None = None,
    ) -> list[Match]:
        """The caller's k most similar images to `vector` at or above `min_similarity`, best first."""
        with self._open(caller_id, model) as ci:
            self._catch_up(caller_id, model, ci)
            keys, sims = ci.index.search(vector, k + (exclude is not None))
            found = [(ci.hashes[int(key)], float(sim)) for key, sim in zip(keys, sims, strict=True)]
        found = [(h, min(s, 1.0)) for h, s in found if h != exclude and s >= min_similarity][:k]
        images = self.store.caller_images(caller_id, [h for h, _ in found])
        # An image whose rows are still on their way (just sent) has no request row yet: it is listed without one.
        return [
            Match(h, round(s, 6), images[h].request_id if h in images else "", images[h].labels if h in images else {})
            for h, s in found
        ]

    def vector_of(self, caller_id: str, model: ModelVersion, image_hash: str) -> np.ndarray:
        """The vector of one of the caller's images; image_not_found (404) when it has none or is not the caller's."""
        vector = self.store.vectors([image_hash], model.model_id, model.version).get(image_hash)
        if vector is None or image_hash not in self.store.caller_images(caller_id, [image_hash]):
            raise RecognitionError(
                "image_not_found", f"No image {image_hash} with an embedding among your requests.", http_status=404
            )
        return vector

    # --- persistence ----------------------------------------------------------------------------------------

    def save(self) -> int:
        """Write every changed index to the blob store; how many were written."""
        with self._lock:
            items = list(self._indexes.items())
        written = 0
        for (caller_id, model_id, version), ci in items:
            with ci.lock:
                if not ci.dirty:
                    continue
                base = blob_base(caller_id, model_id, version)
                # The index first, then the metadata naming its keys: a crash between leaves a pair whose sizes
                # differ, which the next load refuses and rebuilds.
                self.blobs.put(f"{base}.index", ci.index.to_bytes())
                self.blobs.put(f"{base}.json", json.dumps(ci.meta()).encode())
                ci.dirty = False
                written += 1
        return written

    def close(self) -> None:
        """Stop the periodic saver and write what changed (a blob store that is down loses nothing: the indexes
        are copies of the database's vectors, which the next start loads or rebuilds from)."""
        self._stop.set()
        if self._saver is not None:
            self._saver.join(timeout=10)
        try:
            self.save()
        except BlobStoreUnavailable as exc:
            log.warning("similarity indexes not saved at shutdown (%s); the next start catches up from the store", exc)

    @contextmanager
    def _open(self, caller_id: str, model: ModelVersion) -> Iterator[CallerIndex]:
        key = (caller_id, model.model_id, model.version)
        with self._lock:
            ci = self._indexes.get(key)
            if ci is None:
                ci = self._indexes[key] = self._load(caller_id, model) or self._rebuild(caller_id, model)
                self._start_saver()
        with ci.lock:
            yield ci

    def _load(self, caller_id: str, model: ModelVersion) -> CallerIndex | None:
        base = blob_base(caller_id, model.model_id, model.version)
        try:
            meta = json.loads(self.blobs.get(self.blobs.uri(f"{base}.json")))
            index = self.factory.restore(self.blobs.get(self.blobs.uri(f"{base}.index")))
        except (RecognitionError, ValueError, KeyError, RuntimeError) as exc:
            log.info("similarity index %s not loaded (%s); rebuilding it from the store", base, exc)
            return None
        if len(index) != len(meta["hashes"]):
            log.warning("similarity index %s and its key list differ in size; rebuilding it from the store", base)
            return None
        since = datetime.fromisoformat(meta["since"]) if meta.get("since") else None
        return CallerIndex(index, list(meta["hashes"]), since)

    def _rebuild(self, caller_id: str, model: ModelVersion) -> CallerIndex:
        dimension = int(model.extra["dimension"])
        ci = CallerIndex(self.factory.new(dimension))
        self._catch_up(caller_id, model, ci)
        ci.dirty = True  # a rebuilt index is written even when empty, so the next start loads it
        return ci

    def _catch_up(self, caller_id: str, model: ModelVersion, ci: CallerIndex) -> None:
        started = datetime.now(UTC)
        # Hashes first (small), then only the vectors the index lacks: the overlap re-reads cost little.
        new = self.store.caller_hashes(caller_id, model.model_id, model.version, ci.since) - ci.keys.keys()
        for image_hash, vector in sorted(self.store.vectors(list(new), model.model_id, model.version).items()):
            ci.add(image_hash, vector)
        ci.since = started - CATCH_UP_OVERLAP

    def _start_saver(self) -> None:
        if self._saver is None and not self._stop.is_set():
            self._saver = threading.Thread(target=self._save_loop, name="similarity-saver", daemon=True)
            self._saver.start()

    def _save_loop(self) -> None:
        while not self._stop.wait(self.save_interval_s):
            try:
                self.save()
            except Exception:  # a blob store fault: the next round (or the store, on a rebuild) has it all
                log.exception("similarity indexes not saved")
