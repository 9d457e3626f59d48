"""The versioned batch-item message, shared by producers, the API and the job: the one source of its contract.

Its JSON Schema for producers outside the API, `transforms/schemas/batch-item-v1.schema.json`, is generated from
this model (`imgrec job schema`); a unit test keeps the committed file equal to what the model generates.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_V1 = "imgrec.batch_item/v1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class BatchItemMessage(BaseModel):
    """One image to recognise, by reference (claim check: never image bytes). Key on the topic: `caller_id`.

    Producers outside the API write the same messages; the job creates the request row when it does not exist.
    """

    model_config = ConfigDict(
        extra="forbid",
        title="Batch item message on the Kafka batch topic (key: caller_id)",
        json_schema_extra={"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_V1},
    )

    schema_: Literal["imgrec.batch_item/v1"] = Field(SCHEMA_V1, alias="schema", description="Message version.")
    request_id: str = Field(min_length=1, max_length=64, description="Unique per item; the idempotency key.")
    batch_id: str | None = Field(None, max_length=64, description="Batch this item belongs to; null for a lone item.")
    item_index: int | None = Field(None, ge=0, description="Position of the item in its batch.")
    caller_id: str = Field(min_length=1, max_length=128, description="The caller the result belongs to.")
    model_id: str = Field(min_length=1, max_length=128, description="Registry model_id, e.g. scene-classification.")
    model_version: str | None = Field(
        None, max_length=64, description="Pin a registry version instead of routing (cache warm-ups before a "
        "promotion); null: the active version or the canary, as routed."
    )
    image_uri: str = Field(
        min_length=1, max_length=4096, description="http(s):// URL (fetched behind the SSRF guard) or a blob URI."
    )
    confidence_threshold: float | None = Field(None, ge=0, le=1, description="Override of the model's default.")
    min_label_count: int | None = Field(None, ge=0, description="Labels the threshold fallback guarantees.")
    submitted_at: str | None = Field(None, description="When the item was submitted (ISO 8601).")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> BatchItemMessage:
        """Parse and validate; raises pydantic.ValidationError or ValueError with the reason."""
        return cls.model_validate(json.loads(raw))


def message_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the batch-item message, as published for producers."""
    return BatchItemMessage.model_json_schema(by_alias=True)
