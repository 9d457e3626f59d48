"""The batch submission use case: validate every item, store inline bytes (claim check), write rows, publish."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from transforms.batch_queue import BatchQueue, QueueUnavailable
from transforms.blobs import BlobStore
from transforms.catalog import ModelCatalog
from transforms.errors import RecognitionError
from transforms.fetch import ImageFetcher
from transforms.intake import check_size, decode_base64, sniff_image
from transforms.messages import BatchItemMessage
from transforms.settings import Settings
from transforms.store import IdempotencyKeyTaken, NewBatch, NewRequest, Store
from transforms.thresholds import validate_threshold

log = logging.getLogger(__name__)

# Until a first batch has been measured, assume this many images per second (embedded CPU, one model).
PRIOR_IMAGES_PER_S = 20.0


# What the server checks itself, with its own error codes (400 bad_url, bad_base64, no_image, url_and_data;
# 422 bad_threshold), told in the JSON schema so that a client (or a fuzzer) knows what a well-formed request is.
HTTP_URL = (
    r"^https?://[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:[/?#][\x21-\x7e]*)?$"
)
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$"
URL_SCHEMA = {"type": "string", "pattern": HTTP_URL, "maxLength": 4096}
ONE_IMAGE_SOURCE = {
    "oneOf": [
        {"properties": {"image_url": URL_SCHEMA, "image_data": {"type": "null"}}, "required": ["image_url"]},
        {"properties": {"image_data": {"type": "string", "pattern": BASE64}, "image_url": {"type": "null"}},
         "required": ["image_data"]},
    ]
}
THRESHOLD = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]}


class BatchItem(BaseModel):
    """One image and the model to run it through: a batch item, and the body of a sync request.

    `confidence_threshold` is checked per item by the submitter (a bad one rejects that item, not the batch).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=ONE_IMAGE_SOURCE)

    image_url: str | None = Field(None, max_length=4096, description="http(s) URL of the image.")
    image_data: str | None = Field(None, description="The image bytes, base64-encoded.")
    model_id: str = Field(min_length=1, max_length=128)
    confidence_threshold: float | None = Field(
        None, description="Override of the model's default, in [0, 1].", json_schema_extra=THRESHOLD
    )
    min_label_count: int | None = Field(None, ge=0, le=100, description="Labels the threshold fallback guarantees.")


@dataclass(frozen=True)
class SubmittedBatch:
    batch_id: str
    accepted_count: int
    rejected: list[dict[str, Any]]
    estimated_completion_seconds: float
    replayed: bool = False  # the batch an earlier request with the same idempotency key created


@dataclass(frozen=True)
class Submission:
    """How one caller's batch request is to be admitted."""

    caller_id: str
    idempotency_key: str | None = None
    fingerprint: str | None = None  # of the request body: a key reused for another body is refused
    max_items_in_flight: int | None = None


class BatchSubmitter:
    """Accepts a batch: bad items are listed with reasons, the rest are queued."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        catalog: ModelCatalog,
        blobs: BlobStore,
        queue: BatchQueue,
        fetcher: ImageFetcher,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.blobs = blobs
        self.queue = queue
        self.fetcher = fetcher

    def submit(
        self, who: Submission | str, items: Sequence[BatchItem], callback_url: str | None
    ) -> SubmittedBatch:
        """Validate, persist and publish one batch; raises RecognitionError when nothing can be accepted.

        With an idempotency key, a repeat of the request answers with the batch the first one created.
        """
        who = Submission(who) if isinstance(who, str) else who
        caller_id = who.caller_id
        if who.idempotency_key is not None:
            earlier = self.store.batches.by_idempotency_key(caller_id, who.idempotency_key)
            if earlier is not None:
                return self._replayed(earlier, who)
        if len(items) > self.settings.batch_max_items:
            raise RecognitionError(
                "batch_too_large",
                f"A batch holds at most {self.settings.batch_max_items} items; split this one.",
                http_status=413,
                limit=self.settings.batch_max_items,
            )
        if callback_url is not None:
            self.fetcher.check_url(callback_url, "callback_url")
        batch_id = uuid.uuid4().hex
        submitted_at = datetime.now(UTC).isoformat()
        accepted: list[BatchItemMessage] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                uri = self._image_uri(batch_id, index, item)
            except RecognitionError as exc:
                rejected.append({"index": index, "code": exc.code, "message": exc.message})
                continue
            accepted.append(
                BatchItemMessage(
                    request_id=uuid.uuid4().hex,
                    batch_id=batch_id,
                    item_index=index,
                    caller_id=caller_id,
                    model_id=item.model_id,
                    image_uri=uri,
                    confidence_threshold=item.confidence_threshold,
                    min_label_count=item.min_label_count,
                    submitted_at=submitted_at,
                )
            )
        if not accepted:
            raise RecognitionError(
                "no_valid_items", "No item of the batch is valid.", http_status=422, rejected=rejected
            )
        rate = self.store.batches.recent_throughput(window_s=300) or PRIOR_IMAGES_PER_S
        if who.max_items_in_flight is not None:
            self._check_in_flight(caller_id, len(accepted), who.max_items_in_flight, rate)
        backlog = self.store.batches.pending_backlog()
        batch = NewBatch(batch_id, caller_id, callback_url, rejected, who.idempotency_key, who.fingerprint)
        try:
            self.store.batches.create(batch, [NewRequest.from_message(m) for m in accepted])
        except IdempotencyKeyTaken:  # a concurrent request with the same key won the race
            earlier = self.store.batches.by_idempotency_key(caller_id, who.idempotency_key or "")
            assert earlier is not None
            return self._replayed(earlier, who)
        try:
            self.queue.publish(accepted)
        except QueueUnavailable as exc:
            # Nothing reached the queue, so the rows would never progress: fail them loudly instead, and let the
            # client's retry with the same idempotency key make a new batch.
            for m in accepted:
                self.store.requests.fail(m.request_id, "queue_unavailable", str(exc))
            self.store.batches.release_idempotency_key(batch_id)
            raise
        return SubmittedBatch(batch_id, len(accepted), rejected, round((backlog + len(accepted)) / rate, 1))

    def _check_in_flight(self, caller_id: str, adding: int, most: int, rate: float) -> None:
        """429 when the caller's unfinished items plus this batch would exceed `most` (a soft cap: concurrent
        submissions of one caller are counted without a lock)."""
        in_flight = self.store.batches.items_in_flight(caller_id)
        if in_flight + adding > most:
            raise RecognitionError(
                "too_many_items_in_flight",
                f"{in_flight} of your items are still in flight and this batch adds {adding}; at most {most} may be "
                "unfinished at once. Retry when earlier batches have progressed.",
                http_status=429,
                retry_after_s=max(1, round((in_flight + adding - most) / rate)),
                in_flight=in_flight,
                limit=most,
            )

    def _replayed(self, earlier: tuple[str, str | None], who: Submission) -> SubmittedBatch:
        batch_id, fingerprint = earlier
        if fingerprint != who.fingerprint:
            raise RecognitionError(
                "idempotency_key_reused",
                "This Idempotency-Key was used for a different request; use a new key for a new batch.",
            )
        summary = self.store.batches.summary(batch_id)
        assert summary is not None
        rate = self.store.batches.recent_throughput(window_s=300) or PRIOR_IMAGES_PER_S
        remaining = summary.total_count - summary.completed_count - summary.failed_count
        return SubmittedBatch(batch_id, summary.total_count, summary.rejected, round(remaining / rate, 1), True)

    def _image_uri(self, batch_id: str, index: int, item: BatchItem) -> str:
        if not self.catalog.versions(item.model_id):
            raise RecognitionError("unknown_model", f"There is no model {item.model_id!r}.")
        if item.confidence_threshold is not None:
            validate_threshold(item.confidence_threshold)
        if (item.image_url is None) == (item.image_data is None):
            raise RecognitionError(
                "url_and_data" if item.image_url else "no_image", "Give exactly one of image_url and image_data."
            )
        if item.image_url is not None:
            self.fetcher.check_url(item.image_url)
            return item.image_url
        data = decode_base64(item.image_data or "")
        check_size(data, self.settings.batch_max_bytes)
        sniff_image(data, max_pixels=self.settings.max_pixels)
        return self.blobs.put(f"inputs/{batch_id}/{index}", data)
