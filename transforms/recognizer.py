"""The synchronous recognition use case: route, cache, infer, threshold, persist."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from transforms.backends.base import InferenceUnavailable
from transforms.handlers.base import Label
from transforms.inference import infer_images
from transforms.intake import decode_image, sha256_hex
from transforms.ports import Ports
from transforms.raw_outputs import raw_key
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


class Recognizer:
    """Runs one image through the model a caller asked for: route, cache, infer on a miss, threshold, persist.

    Nothing but the answer is waited for: the raw outputs and the request + result rows are handed to background
    writers (`Ports.raw_outputs`, `Ports.finished_requests`), flushed on shutdown; their crash window is the
    README's. A bad image (4xx) leaves no row, as before any work was done.
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
    ) -> Recognition:
        """Recognise one image; RecognitionError for bad input, InferenceUnavailable when the back end is down.

        `timer` records the stages (route, hash, cache_get, decode, preprocess, infer, postprocess, raw_output,
        cache_put, threshold, store) and is labelled `sync_hit` or `sync_miss`.
        """
        timer = timer or StageTimer()
        submitted_at = datetime.now(UTC)
        with timer.stage("route"):
            model = self.ports.model_for(model_id)
            version = model.version
        with timer.stage("hash"):
            image_hash = sha256_hex(data)
        request_id = uuid.uuid4().hex
        with timer.stage("cache_get"):
            labels = self.ports.cache.get(image_hash, model_id, version)
        cache_hit = labels is not None
        timer.path = "sync_hit" if cache_hit else "sync_miss"
        request = NewRequest(
            request_id,
            caller_id,
            model_id,
            image_hash=image_hash,
            confidence_threshold=confidence_threshold,
            min_label_count=min_label_count,
        )
        raw_uri = None
        if labels is None:
            with timer.stage("decode"):
                image = decode_image(data, max_pixels=self.ports.settings.max_pixels)
            try:
                prediction = infer_images(model, self.ports.handler(model), self.ports.backend, [image], timer)[0]
            except InferenceUnavailable as exc:
                failed = FinishedRequest(
                    request, None, "backend_unavailable", str(exc), submitted_at, datetime.now(UTC)
                )
                self.ports.finished_requests.submit(failed)
                raise
            labels = prediction.labels
            with timer.stage("raw_output"):
                raw_uri = self.ports.raw_outputs.submit(raw_key(model_id, version, image_hash), prediction.raw)
            with timer.stage("cache_put"):
                self.ports.cache.put(image_hash, model_id, version, labels)
        with timer.stage("threshold"):
            kept, applied = apply_model_threshold(labels, model, confidence_threshold, min_label_count)
        with timer.stage("store"):
            done = CompletedItem(request_id, model_id, version, image_hash, kept, raw_uri, cache_hit, applied)
            finished = FinishedRequest(request, done, None, None, submitted_at, datetime.now(UTC))
            self.ports.finished_requests.submit(finished)
        return Recognition(request_id, model_id, version, kept, applied, cache_hit, image_hash)
