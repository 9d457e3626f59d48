"""The sync use case on the embedded ports with a fake back end: route, cache, infer, threshold, persist."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.fakes import TINY, png
from transforms.backends.base import InferenceUnavailable
from transforms.errors import RecognitionError
from transforms.handlers.base import Label
from transforms.model_registry import find
from transforms.ports import Ports
from transforms.recognizer import Recognizer

RED = png((200, 100, 40))  # softmax of 8 x channel means: red 0.95, green 0.04, blue 0.01


def as_json(labels: list[Label]) -> list[dict]:
    return [label.to_dict() for label in labels]


def request_row(ports: Ports, request_id: str) -> dict:
    """The request's row once the background writers have written what was handed to them."""
    ports.finished_requests.flush()
    ports.raw_outputs.flush()
    row = ports.store.requests.get(request_id)
    assert row is not None
    return row


def test_a_miss_is_inferred_stored_and_cached_then_served_from_the_cache(ports: Ports) -> None:
    recognizer = Recognizer(ports)
    first = recognizer.recognize("alice", TINY, RED)
    assert (first.cache_hit, first.model_version) == (False, "1")
    assert first.labels[0].label == "red"
    assert ports.backend.batches == [(TINY, 1)]
    row = request_row(ports, first.request_id)
    assert (row["status"], row["cache_hit"], row["image_hash"]) == ("done", False, first.image_hash)
    assert ports.blobs.get(row["raw_output_path"])  # the raw outputs are kept

    second = recognizer.recognize("bob", TINY, RED)
    assert second.cache_hit and as_json(second.labels) == as_json(first.labels)
    assert ports.backend.batches == [(TINY, 1)], "a hit never reaches the back end"
    hit = request_row(ports, second.request_id)
    assert (hit["status"], hit["cache_hit"], hit["caller_id"], hit["raw_output_path"]) == ("done", True, "bob", None)


def test_the_cache_holds_what_the_model_said_and_thresholds_come_last(ports: Ports) -> None:
    recognizer = Recognizer(ports)
    everything = recognizer.recognize("alice", TINY, RED, confidence_threshold=0.0)
    assert [label.label for label in everything.labels] == ["red", "green", "blue"]
    strict = recognizer.recognize("alice", TINY, RED, confidence_threshold=0.99, min_label_count=0)
    assert strict.cache_hit and strict.labels == [] and strict.threshold_applied == 0.99
    fallback = recognizer.recognize("alice", TINY, RED, confidence_threshold=0.99, min_label_count=2)
    assert [label.label for label in fallback.labels] == ["red", "green"]
    assert fallback.threshold_applied < 0.99


def test_the_registry_default_threshold_applies_without_an_override(ports: Ports) -> None:
    model = ports.catalog.get(TINY, "1")
    result = Recognizer(ports).recognize("alice", TINY, RED)
    assert result.threshold_applied <= model.default_confidence_threshold
    assert all(label.score >= result.threshold_applied for label in result.labels)
    assert len(result.labels) >= model.min_label_count


def test_a_bad_image_is_refused_before_any_row_or_inference(ports: Ports) -> None:
    with pytest.raises(RecognitionError) as info:
        Recognizer(ports).recognize("alice", TINY, b"not an image at all")
    assert info.value.code == "not_an_image"
    assert ports.backend.batches == []
    assert ports.store.batches.pending_backlog() == 0


def test_an_unknown_model_is_unknown_model(ports: Ports) -> None:
    with pytest.raises(RecognitionError) as info:
        Recognizer(ports).recognize("alice", "no-such-model", RED)
    assert info.value.code == "unknown_model"


def test_an_unavailable_back_end_fails_the_request_and_raises(ports: Ports) -> None:
    ports.backend.available = False
    with pytest.raises(InferenceUnavailable):
        Recognizer(ports).recognize("alice", TINY, RED)
    ports.backend.available = True
    retried = Recognizer(ports).recognize("alice", TINY, RED)
    assert not retried.cache_hit, "nothing was cached from the failed call"


def test_the_version_is_routed_once_and_stored_with_the_result(ports: Ports) -> None:
    ports.store.registry.seed([replace(find(TINY), version="2", is_active=False)])
    ports.router.set_canary(TINY, "2", 0.5)
    ports.router.rng = lambda: 0.0  # every draw lands on the canary
    canary = Recognizer(ports).recognize("alice", TINY, RED)
    ports.router.rng = lambda: 0.99
    active = Recognizer(ports).recognize("alice", TINY, RED)
    assert (canary.model_version, active.model_version) == ("2", "1")
    assert not active.cache_hit, "the cache is per version"
    assert request_row(ports, canary.request_id)["model_version"] == "2"
