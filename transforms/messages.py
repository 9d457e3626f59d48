"""The versioned batch-item message (see `schemas/batch-item-v1.schema.json`), shared by producers and the job."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_V1 = "imgrec.batch_item/v1"


class BatchItemMessage(BaseModel):
    """One image to recognise, by reference. Key on the topic: `caller_id`."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["imgrec.batch_item/v1"] = Field(SCHEMA_V1, alias="schema")
    request_id: str = Field(min_length=1, max_length=64)
    batch_id: str | None = Field(None, max_length=64)
    item_index: int | None = Field(None, ge=0)
    caller_id: str = Field(min_length=1, max_length=128)
    model_id: str = Field(min_length=1, max_length=128)
    image_uri: str = Field(min_length=1, max_length=4096)
    confidence_threshold: float | None = Field(None, ge=0, le=1)
    min_label_count: int | None = Field(None, ge=0)
    submitted_at: str | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> BatchItemMessage:
        """Parse and validate; raises pydantic.ValidationError or ValueError with the reason."""
        return cls.model_validate(json.loads(raw))
