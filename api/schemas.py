"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from transforms.batch_submission import URL_SCHEMA, BatchItem


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
