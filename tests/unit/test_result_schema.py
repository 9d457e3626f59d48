"""The results topic's messages have one source, their models: the published JSON Schema is generated from them, and
what the batch steps write validates against it."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from transforms.batch_steps import rejected_result
from transforms.handlers.base import Label
from transforms.results import BatchCompleted, ItemResult, ResultsTopicMessage, failed_result, result_json_schema
from transforms.settings import REPO_ROOT
from transforms.store import CompletedItem

PUBLISHED = REPO_ROOT / "transforms" / "schemas" / "result-v1.schema.json"


def valid(message: dict) -> bool:
    return Draft202012Validator(result_json_schema()).is_valid(message)


def test_the_published_schema_is_what_the_models_generate() -> None:
    assert json.loads(PUBLISHED.read_text()) == result_json_schema(), (
        "regenerate it: imgrec job schema --results > transforms/schemas/result-v1.schema.json"
    )
    Draft202012Validator.check_schema(result_json_schema())


def test_a_done_answer_carries_the_kept_labels_and_validates() -> None:
    item = CompletedItem("r1", "object-detection", "2", "h" * 64,
                         [Label("cup", 0.91234567, [1.0, 2.0, 30.5, 40.25]), Label("table", 0.5)], None, True, 0.4)
    written = json.loads(ItemResult.done(item, "acme", "b1", 3).to_json())
    assert valid(written)
    assert written["type"] == "result" and written["status"] == "done" and written["error"] is None
    assert (written["batch_id"], written["item_index"], written["model_version"]) == ("b1", 3, "2")
    assert written["labels"] == [{"label": "cup", "score": 0.912346, "bounding_box": [1.0, 2.0, 30.5, 40.25]},
                                 {"label": "table", "score": 0.5, "bounding_box": None}]
    assert written["cache_hit"] is True and written["threshold_applied"] == 0.4
    assert ResultsTopicMessage.from_json(json.dumps(written)) == ItemResult.done(item, "acme", "b1", 3)


def test_a_dead_letter_is_answered_when_its_request_id_can_be_read() -> None:
    raw = json.dumps({"schema": "bogus", "request_id": "r9", "caller_id": "acme"})
    answer = rejected_result(raw, "invalid batch item: schema: wrong")
    assert answer is not None and valid(json.loads(answer.to_json()))
    assert (answer.request_id, answer.caller_id, answer.status) == ("r9", "acme", "failed")
    assert answer.error is not None and answer.error.code == "invalid_message" and "schema" in answer.error.message
    no_caller = rejected_result(json.dumps({"request_id": "r10", "caller_id": 5}), "invalid")
    assert no_caller is not None and no_caller.caller_id is None
    for unreadable in (b"\xff not json", "[1]", json.dumps({"request_id": ""}), json.dumps({"caller_id": "acme"})):
        assert rejected_result(unreadable, "invalid") is None


def test_a_completion_event_validates_and_the_kinds_are_told_apart_by_type() -> None:
    event = BatchCompleted(batch_id="b1", caller_id="acme", status="partially_failed", total_count=3,
                           completed_count=2, failed_count=1, rejected_count=1)
    written = json.loads(event.to_json())
    assert valid(written) and written["type"] == "batch.completed"
    assert ResultsTopicMessage.from_json(event.to_json()) == event
    failed = json.loads(failed_result("r1", "acme", "not_an_image", "not an image").to_json())
    assert valid(failed) and not valid({**failed, "type": "batch.completed"})


@pytest.mark.parametrize(
    "change",
    [{"status": "pending"}, {"labels": [{"label": "x", "score": 0.5}]}, {"extra": 1}, {"schema": "imgrec.result/v2"},
     {"error": {"code": "x"}}, {"cache_hit": None}],
)
def test_the_schema_refuses_what_the_job_never_writes(change: dict) -> None:
    written = json.loads(failed_result("r1", "acme", "not_an_image", "not an image").to_json())
    assert valid(written)
    assert not valid({**written, **change})


def test_the_readme_examples_are_valid() -> None:
    section = (REPO_ROOT / "README.md").read_text().split("### Results on Kafka", 1)[1].split("\n## ", 1)[0]
    examples = [json.loads(line) for block in re.findall(r"```json\n(.*?)```", section, re.S)
                for line in block.splitlines() if line.strip()]
    assert {e["type"] for e in examples} == {"result", "batch.completed"}
    assert all(valid(e) for e in examples)
