"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from transforms.batch_submission import BatchItem


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, in a sentence.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class RecognizeRequest(BatchItem):
    """JSON body of POST /v1/recognize: exactly one of `image_url` and `image_data`."""


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


class RecognizeResponse(BaseModel):
    request_id: str
    status: Literal["done"] = "done"
    labels: list[LabelOut]
    cache_hit: bool
    model_id: str
    model_version: str
    threshold_applied: float


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(min_length=1)
    callback_url: str | None = Field(None, max_length=4096, description="Webhook called when the batch ends.")


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


class BatchStatus(BaseModel):
    batch_id: str
    status: Literal["pending", "processing", "done", "failed", "partially_failed"]
    completed_count: int
    failed_count: int
    total_count: int
    rejected: list[RejectedItem]
    results: list[BatchItemResult] | None = Field(None, description="Present when the batch has ended; paginated.")
    next_offset: int | None = None
