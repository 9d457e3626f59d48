"""Request and response bodies of the REST API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from transforms.batch_submission import BASE64, URL_SCHEMA, BatchItem
from transforms.similarity import Match


def embedding_out(vector: Sequence[float]) -> list[float]:
    """A vector as the API shows it: plain floats, 6 decimal places."""
    return [round(float(v), 6) for v in vector]


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, in a sentence.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class RecognizeRequest(BatchItem):
    """JSON body of POST /v1/recognize: exactly one of `image_url` and `image_data`."""

    near_duplicates: bool = Field(
        False, description="Also list your earlier images that look the same (re-encoded or resized copies)."
    )


class LabelOut(BaseModel):
    label: str
    score: float
    bounding_box: list[float] | None = Field(
        None, description="[x_min, y_min, x_max, y_max] in image pixels; absent for classifiers."
    )

    @model_serializer(mode="wrap")
    def _omit_missing_box(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("bounding_box") is None:
            data.pop("bounding_box", None)
        return data


class SimilarImage(BaseModel):
    image_hash: str = Field(description="SHA-256 of the earlier image's bytes.")
    similarity: float = Field(description="Cosine similarity of the two images' embeddings, at most 1.")
    request_id: str = Field(description="Your latest request of that image (empty while its rows are being written).")
    labels: dict[str, list[dict[str, Any]]] | None = Field(
        None, description="Labels other models gave that image in your requests, by model_id; absent when none."
    )

    @classmethod
    def of(cls, match: Match) -> SimilarImage:
        return cls(
            image_hash=match.image_hash,
            similarity=match.similarity,
            request_id=match.request_id,
            labels=match.labels or None,
        )


class RecognizeResponse(BaseModel):
    request_id: str
    status: Literal["done"] = "done"
    labels: list[LabelOut]
    cache_hit: bool
    model_id: str
    model_version: str
    threshold_applied: float
    embedding: list[float] | None = Field(None, description="An embedding model's vector (unit length).")
    near_duplicates: list[SimilarImage] | None = Field(
        None, description="With near_duplicates=true: your earlier images at or above the near-duplicate threshold."
    )


IMAGE_HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_NONE = {"type": "null"}
# Exactly one query: an image by URL or as base64, or the hash of one of the caller's images.
ONE_QUERY = {
    "oneOf": [
        {"properties": {"image_url": URL_SCHEMA, "image_data": _NONE, "image_hash": _NONE}, "required": ["image_url"]},
        {"properties": {"image_data": {"type": "string", "pattern": BASE64}, "image_url": _NONE, "image_hash": _NONE},
         "required": ["image_data"]},
        {"properties": {"image_hash": IMAGE_HASH, "image_url": _NONE, "image_data": _NONE},
         "required": ["image_hash"]},
    ]
}  # fmt: skip


class SearchRequest(BaseModel):
    """JSON body of POST /v1/search/similar: exactly one of `image_url`, `image_data` and `image_hash`."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=ONE_QUERY)

    image_url: str | None = Field(None, max_length=4096, description="http(s) URL of the image.")
    image_data: str | None = Field(None, description="The image bytes, base64-encoded.")
    image_hash: str | None = Field(
        None, pattern="^[0-9a-f]{64}$", description="SHA-256 of one of your earlier images, instead of an image."
    )
    k: int = Field(10, ge=1, le=1000, description="Most results.")
    min_similarity: float = Field(0.0, ge=-1, le=1, description="Lowest cosine similarity returned.")


class SearchResponse(BaseModel):
    model_id: str
    model_version: str
    image_hash: str = Field(description="SHA-256 of the query image.")
    results: list[SimilarImage] = Field(description="Your most similar earlier images, best first.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(min_length=1)
    callback_url: str | None = Field(
        None, max_length=4096, description="Webhook called when the batch ends.",
        json_schema_extra={"anyOf": [URL_SCHEMA, {"type": "null"}]},
    )


class RejectedItem(BaseModel):
    index: int
    code: str
    message: str


class BatchAccepted(BaseModel):
    batch_id: str
    accepted_count: int
    rejected: list[RejectedItem]
    estimated_completion_seconds: float


class BatchItemResult(BaseModel):
    request_id: str
    index: int
    status: str
    model_id: str
    model_version: str | None
    labels: list[LabelOut] | None
    cache_hit: bool | None
    threshold_applied: float | None
    error: ErrorBody | None
    embedding: list[float] | None = Field(None, description="An embedding model's vector (unit length).")

    @model_serializer(mode="wrap")
    def _omit_missing_embedding(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("embedding") is None:
            data.pop("embedding", None)
        return data


class RequestStatus(BaseModel):
    """One request (sync or batch item) as its owner sees it."""

    request_id: str
    status: Literal["pending", "processing", "done", "failed"]
    model_id: str
    model_version: str | None = Field(description="The version that answered; null until one has.")
    batch_id: str | None
    index: int | None = Field(description="Position in its batch; null for a lone item.")
    labels: list[LabelOut] | None = Field(description="The labels its threshold kept, when done.")
    cache_hit: bool | None
    threshold_applied: float | None
    error: ErrorBody | None
    submitted_at: datetime
    completed_at: datetime | None


class BatchStatus(BaseModel):
    batch_id: str
    status: Literal["pending", "processing", "done", "failed", "partially_failed"]
    completed_count: int
    failed_count: int
    total_count: int
    rejected: list[RejectedItem]
    results: list[BatchItemResult] | None = Field(None, description="Present when the batch has ended; paginated.")
    next_offset: int | None = None


class VersionOut(BaseModel):
    version: str
    state: Literal["registered", "evaluated", "canary", "active", "retired"]
    framework: str = Field(description="What was uploaded: onnx or torchscript (served as ONNX either way).")
    handler: str


class ModelOut(BaseModel):
    model_id: str
    active_version: str | None = Field(description="The version that serves the traffic (null: none yet).")
    canary_version: str | None = Field(description="The version taking `canary_weight` of the traffic, if any.")
    canary_weight: float = Field(ge=0, le=1)
    default_confidence_threshold: float | None = Field(description="The active version's default threshold.")
    min_label_count: int | None = Field(
        description="The active version's fallback: the threshold is lowered until this many labels qualify."
    )
    labels: list[str] = Field(description="Label names the active version can answer.")
    versions: list[VersionOut]


class ModelList(BaseModel):
    models: list[ModelOut]
