"""The versioned messages of the results topic, for producers that read their answers from Kafka.

Two kinds share the topic (key: `caller_id`) and one schema, told apart by `type`: an item's `result` (done or
failed, one per finished item, dead letters included) and `batch.completed` (once per batch). The JSON Schema,
`transforms/schemas/result-v1.schema.json`, is generated from these models (`imgrec job schema --results`); a unit
test keeps the committed file equal to what the models generate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, RootModel

from transforms.handlers.base import Label
from transforms.messages import JSON_SCHEMA_DIALECT
from transforms.store import BatchSummary, CompletedItem

RESULT_SCHEMA_V1 = "imgrec.result/v1"
# The job always writes every field (null where it has none), so the published schema requires them all.
_WRITTEN_WHOLE = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class _Message(BaseModel):
    model_config = _WRITTEN_WHOLE

    schema_: Literal["imgrec.result/v1"] = Field(RESULT_SCHEMA_V1, alias="schema", description="Message version.")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class LabelOut(BaseModel):
    """One label the request's threshold kept."""

    model_config = _WRITTEN_WHOLE

    label: str
    score: float
    bounding_box: list[float] | None = Field(
        None, min_length=4, max_length=4, description="[x_min, y_min, x_max, y_max] in pixels; null for classifiers."
    )


class ItemError(BaseModel):
    """Why an item failed: a machine-readable code and a sentence."""

    model_config = _WRITTEN_WHOLE

    code: str = Field(description="e.g. invalid_message, not_an_image, url_fetch_failed, unknown_model.")
    message: str


class ItemResult(_Message):
    """The answer for one item: `done` with the labels its threshold kept, or `failed` with the reason."""

    type: Literal["result"] = "result"
    request_id: str = Field(description="The item's request_id, as the producer wrote it.")
    caller_id: str | None = Field(description="The caller (also the record key); null only for an unreadable one.")
    batch_id: str | None = None
    item_index: int | None = None
    status: Literal["done", "failed"]
    model_id: str | None = None
    model_version: str | None = Field(None, description="The version that answered; null when none was chosen.")
    labels: list[LabelOut] = Field(default_factory=list, description="Thresholded labels, best first.")
    cache_hit: bool = False
    threshold_applied: float | None = Field(None, description="The threshold that was applied (after the fallback).")
    error: ItemError | None = Field(None, description="Set when status is failed.")

    @classmethod
    def done(cls, item: CompletedItem, caller_id: str, batch_id: str | None = None,
             item_index: int | None = None) -> ItemResult:
        """The answer of an item that was recognised."""
        return cls(
            request_id=item.request_id, caller_id=caller_id, batch_id=batch_id, item_index=item_index,
            status="done", model_id=item.model_id, model_version=item.model_version,
            labels=[_label(x) for x in item.labels], cache_hit=item.cache_hit, threshold_applied=item.threshold_applied,
        )  # fmt: skip


class BatchCompleted(_Message):
    """Sent once when every item of a batch has finished (done or failed)."""

    type: Literal["batch.completed"] = "batch.completed"
    batch_id: str
    caller_id: str
    status: Literal["done", "partially_failed", "failed"]
    total_count: int = Field(ge=0, description="Items accepted into the batch.")
    completed_count: int = Field(ge=0, description="Items done.")
    failed_count: int = Field(ge=0, description="Items failed.")
    rejected_count: int = Field(ge=0, description="Items refused when the batch was submitted (never queued).")

    @classmethod
    def of(cls, summary: BatchSummary) -> BatchCompleted:
        return cls(
            batch_id=summary.batch_id, caller_id=summary.caller_id, status=summary.status,
            total_count=summary.total_count, completed_count=summary.completed_count,
            failed_count=summary.failed_count, rejected_count=len(summary.rejected),
        )  # fmt: skip


class ResultsTopicMessage(RootModel[Annotated[ItemResult | BatchCompleted, Field(discriminator="type")]]):
    """Any message of the results topic."""

    model_config = ConfigDict(
        title="Message on the Kafka results topic (key: caller_id)",
        json_schema_extra={"$schema": JSON_SCHEMA_DIALECT, "$id": RESULT_SCHEMA_V1},
    )

    @classmethod
    def from_json(cls, raw: bytes | str) -> ItemResult | BatchCompleted:
        """Parse and validate one message; raises pydantic.ValidationError or ValueError."""
        return cls.model_validate(json.loads(raw)).root


class ResultPublisher(Protocol):
    """Writes answers to the results topic outside the Flink job (the sync path, when a setting asks for it)."""

    def publish(self, answers: Sequence[ItemResult]) -> None: ...

    def close(self) -> None: ...


def result_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the results topic's messages, as published for consumers (what is written)."""
    return ResultsTopicMessage.model_json_schema(by_alias=True, mode="serialization")


def _label(label: Label) -> LabelOut:
    return LabelOut.model_validate(label.to_dict())


def lenient_identity(raw: bytes | str) -> tuple[str, str | None] | None:
    """(request_id, caller_id) of a message that failed validation, when they can still be read from it."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    request_id, caller_id = data.get("request_id"), data.get("caller_id")
    if not isinstance(request_id, str) or not request_id:
        return None
    return request_id, caller_id if isinstance(caller_id, str) and caller_id else None


def failed_result(request_id: str, caller_id: str | None, code: str, message: str, *, batch_id: str | None = None,
                  item_index: int | None = None, model_id: str | None = None,
                  model_version: str | None = None) -> ItemResult:
    """The answer of an item that failed (or a message that could not be read as one)."""
    return ItemResult(
        request_id=request_id, caller_id=caller_id, batch_id=batch_id, item_index=item_index, status="failed",
        model_id=model_id, model_version=model_version, error=ItemError(code=code, message=message[:2000]),
    )  # fmt: skip
