"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, in a sentence.")


class ErrorResponse(BaseModel):
    error: ErrorBody


# What the server checks itself, with its own error codes (400 bad_url, bad_base64, no_image, url_and_data;
# 422 bad_threshold), told in the schema so that a client (or a fuzzer) knows what a well-formed request is.
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


class RecognizeRequest(BaseModel):
    """JSON body of POST /v1/recognize: exactly one of `image_url` and `image_data`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_IMAGE_SOURCE)

    image_url: str | None = Field(None, max_length=4096, description="http(s) URL of the image.")
    image_data: str | None = Field(None, description="The image bytes, base64-encoded.")
    model_id: str = Field(min_length=1, max_length=128)
    confidence_threshold: float | None = Field(
        None, description="Override of the model's default, in [0, 1].", json_schema_extra=THRESHOLD
    )
    min_label_count: int | None = Field(None, ge=0, le=100, description="Labels the threshold fallback guarantees.")


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


class BatchItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_IMAGE_SOURCE)

    image_url: str | None = Field(None, max_length=4096)
    image_data: str | None = None
    model_id: str = Field(min_length=1, max_length=128)
    confidence_threshold: float | None = Field(None, json_schema_extra=THRESHOLD)
    min_label_count: int | None = Field(None, ge=0, le=100)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemIn] = Field(min_length=1)
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
