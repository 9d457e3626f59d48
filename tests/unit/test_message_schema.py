"""The batch-item message has one source, its model: the published JSON Schema is generated from it and agrees."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from transforms.messages import BatchItemMessage, message_json_schema
from transforms.settings import REPO_ROOT

PUBLISHED = REPO_ROOT / "transforms" / "schemas" / "batch-item-v1.schema.json"
VALID = {
    "schema": "imgrec.batch_item/v1", "request_id": "r1", "caller_id": "acme", "model_id": "scene-classification",
    "image_uri": "https://images.example.com/1.jpg",
}


def model_accepts(message: dict) -> bool:
    try:
        BatchItemMessage.model_validate(message)
    except ValidationError:
        return False
    return True


def test_the_published_schema_is_what_the_model_generates() -> None:
    assert json.loads(PUBLISHED.read_text()) == message_json_schema(), (
        "regenerate it: imgrec job schema > transforms/schemas/batch-item-v1.schema.json"
    )
    Draft202012Validator.check_schema(message_json_schema())


def test_the_readme_example_is_valid_for_both() -> None:
    section = (REPO_ROOT / "README.md").read_text().split("### Producing straight to Kafka", 1)[1]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    assert Draft202012Validator(message_json_schema()).is_valid(example)
    assert model_accepts(example)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"schema": "imgrec.batch_item/v2"},
        {"request_id": ""},
        {"request_id": "r" * 65},
        {"caller_id": None},
        {"image_uri": ""},
        {"item_index": -1},
        {"confidence_threshold": 1.5},
        {"confidence_threshold": 0.5, "min_label_count": 2, "batch_id": "b", "item_index": 3},
        {"min_label_count": -1},
        {"extra_field": 1},
        {"submitted_at": "2026-11-28T12:00:00Z"},
    ],
)
def test_schema_and_model_agree_on_each_message(change: dict) -> None:
    message = {**VALID, **change}
    assert Draft202012Validator(message_json_schema()).is_valid(message) == model_accepts(message)


def test_a_message_without_a_required_field_is_refused_by_both() -> None:
    for field in ("request_id", "caller_id", "model_id", "image_uri"):
        message = {k: v for k, v in VALID.items() if k != field}
        assert not Draft202012Validator(message_json_schema()).is_valid(message)
        assert not model_accepts(message)
