"""The synchronous recognition use case: route, cache, infer, threshold, persist."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from transforms.backends.base import InferenceUnavailable
from transforms.cache import CachedResult
from transforms.handlers.base import Label, ModelVersion
from transforms.inference import infer_images
from transforms.intake import decode_image, sha256_hex
from transforms.model_metrics import observe_answer, observe_error
from transforms.ports import Ports
from transforms.raw_outputs import raw_key
from transforms.results import ItemResult
from transforms.similarity import Match
from transforms.stages import StageTimer
from transforms.store import CompletedItem, FinishedRequest, NewRequest
from transforms.thresholds import apply_model_threshold

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognition:
    """What one sync call answered."""

    request_id: str
    model_id: str
    model_version: str
    labels: list[Label]
    threshold_applied: float
    cache_hit: bool
    image_hash: str
    embedding: np.ndarray | None = None
    near_duplicates: list[Match] | None = None


@dataclass(frozen=True)
class Embedded:
    """An image's vector through the embedding model, not recorded as a request."""

    image_hash: str
    model: ModelVersion
    vector: np.ndarray


@dataclass(frozen=True)
class _Answer:
    result: CachedResult
    cache_hit: bool
    raw_uri: str | None


class Recognizer:
    """Runs one image through the model a caller asked for: route, cache, infer on a miss, threshold, persist.

    Nothing but the answer is waited for: the raw outputs and the request + result rows are handed to background
    writers (`Ports.raw_outputs`, `Ports.finished_requests`), flushed on shutdown; their crash window is the
    README's. A bad image (4xx) leaves no row, as before any work was done. An embedding model's vector also goes
    into the caller's similarity index at once, so the next search finds the image.
    """

    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def recognize(
        self,
        caller_id: str,
        model_id: str,
        data: bytes,
        confidence_threshold: float | None = None,
        min_label_count: int | None = None,
        timer: StageTimer | None = None,
        near_duplicates: bool = False,
    ) -> Recognition:
        """Recognise one image; RecognitionError for bad input, InferenceUnavailable when the back end is down.

        `timer` records the stages (route, hash, cache_get, decode, preprocess, infer, postprocess, raw_output,
        cache_put, threshold, store) and is labelled `sync_hit` or `sync_miss`. With `near_duplicates`, the
        answer lists the caller's earlier images at or above `near_duplicate_threshold` (stage `near_duplicates`).
        """
        timer = timer or StageTimer()
        submitted_at = datetime.now(UTC)
        started = time.perf_counter()
        with timer.stage("route"):
            model = self.ports.model_for(model_id)
            version = model.version
        with timer.stage("hash"):
            image_hash = sha256_hex(data)
        request_id = uuid.uuid4().hex
        request = NewRequest(
            request_id,
            caller_id,
            model_id,
            image_hash=image_hash,
            confidence_threshold=confidence_threshold,
            min_label_count=min_label_count,
        )
        try:
            answer = self._answer(model, image_hash, data, timer)
        except InferenceUnavailable as exc:
            failed = FinishedRequest(request, None, "backend_unavailable", str(exc), submitted_at, datetime.now(UTC))
            self.ports.finished_requests.submit(failed)
            raise
        timer.path = "sync_hit" if answer.cache_hit else "sync_miss"
        if not answer.cache_hit and self.ports.settings.keep_sync_images:  # what a warm promotion reads again
            with timer.stage("raw_output"):
                request = replace(request, image_uri=self.ports.kept_images.submit_image(image_hash, data))
        embedding = answer.result.embedding
        with timer.stage("threshold"):
            kept, applied = apply_model_threshold(answer.result.labels, model, confidence_threshold, min_label_count)
        duplicates = None
        if near_duplicates:
            with timer.stage("near_duplicates"):
                duplicates = self._near_duplicates(caller_id, image_hash, data, model, embedding, timer)
        elif embedding is not None:
            self.ports.similarity.add(caller_id, model, image_hash, embedding)
        with timer.stage("store"):
            done = CompletedItem(
                request_id, model_id, version, image_hash, kept, answer.raw_uri, answer.cache_hit, applied, embedding
            )
            finished = FinishedRequest(request, done, None, None, submitted_at, datetime.now(UTC))
            self.ports.finished_requests.submit(finished)
            if self.ports.sync_answers is not None:
                self.ports.sync_answers.submit(ItemResult.done(done, caller_id))
        observe_answer(model_id, version, answer.result.labels, answer.cache_hit, time.perf_counter() - started)
        return Recognition(
            request_id, model_id, version, kept, applied, answer.cache_hit, image_hash, embedding, duplicates
        )

    def embed(self, data: bytes, timer: StageTimer | None = None) -> Embedded:
        """An image's vector through the embedding model (cached like any result), without recording a request."""
        timer = timer or StageTimer()
        model = self.ports.model_for(self.ports.settings.embedding_model_id)
        image_hash = sha256_hex(data)
        vector = self._answer(model, image_hash, data, timer).result.embedding
        if vector is None:
            raise ValueError(f"{model.model_id} gives no embedding; check IMGREC_EMBEDDING_MODEL_ID")
        return Embedded(image_hash, model, vector)

    def _near_duplicates(
        self,
        caller_id: str,
        image_hash: str,
        data: bytes,
        model: ModelVersion,
        embedding: np.ndarray | None,
        timer: StageTimer,
    ) -> list[Match]:
        """The caller's earlier images like this one; the image itself then joins the caller's index (with its
        vector stored, so that a rebuild finds it through this request)."""
        if embedding is not None:
            embedded = Embedded(image_hash, model, embedding)
        else:
            embedded = self.embed(data, timer)
            emb_model = embedded.model
            self.ports.store.embeddings.put(image_hash, emb_model.model_id, emb_model.version, embedded.vector)
        settings = self.ports.settings
        found = self.ports.similarity.search(
            caller_id,
            embedded.model,
            embedded.vector,
            settings.near_duplicate_max,
            settings.near_duplicate_threshold,
            exclude=image_hash,
        )
        self.ports.similarity.add(caller_id, embedded.model, image_hash, embedded.vector)
        return found

    def _answer(self, model: ModelVersion, image_hash: str, data: bytes, timer: StageTimer) -> _Answer:
        """What the model says about the image: from the cache, else inferred (raw output stored, cache filled)."""
        with timer.stage("cache_get"):
            hit = self.ports.cache.get(image_hash, model.model_id, model.version)
        if hit is not None:
            return _Answer(hit, True, None)
        with timer.stage("decode"):
            image = decode_image(data, max_pixels=self.ports.settings.max_pixels)
        try:
            prediction = infer_images(model, self.ports.handler(model), self.ports.backend, [image], timer)[0]
        except InferenceUnavailable:
            observe_error(model.model_id, model.version, "backend_unavailable")
            raise
        except Exception:
            observe_error(model.model_id, model.version, "inference_failed")
            raise
        with timer.stage("raw_output"):
            raw_uri = self.ports.raw_outputs.submit(raw_key(model.model_id, model.version, image_hash), prediction.raw)
        with timer.stage("cache_put"):
            self.ports.cache.put(image_hash, model.model_id, model.version, prediction.labels, prediction.embedding)
        return _Answer(CachedResult(prediction.labels, prediction.embedding), False, raw_uri)
