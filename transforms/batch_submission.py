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
from transforms.store import NewRequest, Store
from transforms.thresholds import validate_threshold

log = logging.getLogger(__name__)

# Until a first batch has been measured, assume this many images per second (embedded CPU, one model).
PRIOR_IMAGES_PER_S = 20.0


class BatchItem(BaseModel):
    """One image and the model to run it through: a batch item, and the body of a sync request.

    `confidence_threshold` is checked per item by the submitter (a bad one rejects that item, not the batch).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_url: str | None = Field(None, max_length=4096, description="http(s) URL of the image.")
    image_data: str | None = Field(None, description="The image bytes, base64-encoded.")
    model_id: str = Field(min_length=1, max_length=128)
    confidence_threshold: float | None = Field(None, description="Override of the model's default, in [0, 1].")
    min_label_count: int | None = Field(None, ge=0, le=100, description="Labels the threshold fallback guarantees.")


@dataclass(frozen=True)
class SubmittedBatch:
    batch_id: str
    accepted_count: int
    rejected: list[dict[str, Any]]
    estimated_completion_seconds: float


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

    def submit(self, caller_id: str, items: Sequence[BatchItem], callback_url: str | None) -> SubmittedBatch:
        """Validate, persist and publish one batch; raises RecognitionError when nothing can be accepted."""
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
        backlog = self.store.pending_backlog()
        self.store.create_batch(
            batch_id, caller_id, [NewRequest.from_message(m) for m in accepted], callback_url, rejected
        )
        try:
            self.queue.publish(accepted)
        except QueueUnavailable as exc:
            # Nothing reached the queue, so the rows would never progress: fail them loudly instead.
            for m in accepted:
                self.store.fail_request(m.request_id, "queue_unavailable", str(exc))
            raise
        rate = self.store.recent_throughput(window_s=300) or PRIOR_IMAGES_PER_S
        return SubmittedBatch(batch_id, len(accepted), rejected, round((backlog + len(accepted)) / rate, 1))

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
