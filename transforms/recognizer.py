"""The synchronous recognition use case: route, cache, infer, threshold, persist."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from transforms.backends.base import InferenceUnavailable
from transforms.handlers.base import Label
from transforms.inference import infer_images, raw_output_bytes, raw_output_key
from transforms.intake import decode_image, sha256_hex
from transforms.ports import Ports
from transforms.store import CompletedItem, NewRequest
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
    """Runs one image through the model a caller asked for: route, cache, infer on a miss, threshold, persist."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    def recognize(
        self,
        caller_id: str,
        model_id: str,
        data: bytes,
        confidence_threshold: float | None = None,
        min_label_count: int | None = None,
    ) -> Recognition:
        """Recognise one image; RecognitionError for bad input, InferenceUnavailable when the back end is down."""
        model = self.ports.model_for(model_id)
        version = model.version
        image_hash = sha256_hex(data)
        request_id = uuid.uuid4().hex
        labels = self.ports.cache.get(image_hash, model_id, version)
        cache_hit = labels is not None
        request = NewRequest(
            request_id,
            caller_id,
            model_id,
            image_hash=image_hash,
            status="processing",
            confidence_threshold=confidence_threshold,
            min_label_count=min_label_count,
        )
        raw_uri = None
        if labels is None:
            # Decode before any row is written, so a bad image leaves no trace.
            image = decode_image(data, max_pixels=self.ports.settings.max_pixels)
            self.ports.store.create_requests([request])
            try:
                prediction = infer_images(model, self.ports.handler(model), self.ports.backend, [image])[0]
            except InferenceUnavailable as exc:
                self.ports.store.fail_request(request_id, "backend_unavailable", str(exc), image_hash)
                raise
            labels = prediction.labels
            raw_uri = self.ports.blobs.put(raw_output_key(model, image_hash), raw_output_bytes(prediction))
            self.ports.cache.put(image_hash, model_id, version, labels)
        kept, applied = apply_model_threshold(labels, model, confidence_threshold, min_label_count)
        done = CompletedItem(request_id, model_id, version, image_hash, kept, raw_uri, cache_hit, applied)
        if cache_hit:  # one plain transaction: the hit path's only write
            self.ports.store.insert_completed(request, done)
        else:
            self.ports.store.complete_requests([done])
        return Recognition(request_id, model_id, version, kept, applied, cache_hit, image_hash)
