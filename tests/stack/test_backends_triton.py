"""Triton back end against a real tritonserver serving the repository generated from the registry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from tests.embedded.test_models_golden import PHOTOS, ZOO, assert_same_prediction, photo, predict
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.adapters.triton import TritonBackend
from transforms.backends.base import InferenceUnavailable
from transforms.handlers.base import PIXELS_INPUT
from transforms.model_registry import find
from transforms.settings import get_settings


@pytest.fixture(scope="module")
def triton(triton_url: str) -> Iterator[TritonBackend]:
    backend = TritonBackend(triton_url, timeout_s=60)
    yield backend
    backend.close()


@pytest.mark.parametrize("model_id", ZOO)
def test_triton_and_onnxruntime_agree(triton: TritonBackend, model_id: str) -> None:
    images = [photo(n) for n in PHOTOS]
    local = OnnxRuntimeBackend(get_settings().resolved_model_store)
    try:
        expected = predict(local, model_id, *images)
    finally:
        local.close()
    for want, got in zip(expected, predict(triton, model_id, *images), strict=True):
        assert_same_prediction(got, want, atol=1e-4)
        for a, b in zip(got.labels, want.labels, strict=True):
            if a.bounding_box is not None:
                np.testing.assert_allclose(a.bounding_box, b.bounding_box or [], atol=0.05)


def test_triton_is_ready_and_serves_the_tiny_model(triton: TritonBackend) -> None:
    assert triton.ready()
    x = np.zeros((2, 8, 8, 3), np.uint8)
    x[0, ..., 2] = 255
    out = triton.infer(find("tiny-rgb"), {PIXELS_INPUT: x}, ["logits"])
    np.testing.assert_allclose(out["logits"], [[0, 0, 8], [0, 0, 0]])


def test_unknown_model_is_unavailable(triton: TritonBackend) -> None:
    ghost = replace(find("tiny-rgb"), model_id="no-such-model")
    with pytest.raises(InferenceUnavailable, match="no-such-model"):
        triton.infer(ghost, {PIXELS_INPUT: np.zeros((1, 8, 8, 3), np.uint8)}, ["logits"])


def test_malformed_input_is_a_value_error(triton: TritonBackend) -> None:
    with pytest.raises(ValueError, match="INVALID_ARGUMENT"):
        triton.infer(find("tiny-rgb"), {PIXELS_INPUT: np.zeros((1, 9, 9, 3), np.uint8)}, ["logits"])


def test_channel_is_reopened_after_its_max_age_and_calls_go_on(triton_url: str) -> None:
    x = np.zeros((1, 8, 8, 3), np.uint8)
    # dns:/// resolves every address of a name (round robin over them); an address literal resolves to itself.
    backend = TritonBackend(f"dns:///{triton_url}", timeout_s=1.5, channel_max_age_s=1.5)
    try:
        first = backend._channel
        backend.infer(find("tiny-rgb"), {PIXELS_INPUT: x}, ["logits"])
        time.sleep(1.6)
        backend.infer(find("tiny-rgb"), {PIXELS_INPUT: x}, ["logits"])
        assert backend._channel is not first and backend._retired is first  # the old one closes one age later
        time.sleep(1.6)
        out = backend.infer(find("tiny-rgb"), {PIXELS_INPUT: x}, ["logits"])
        assert backend._retired is not first
        np.testing.assert_allclose(out["logits"], [[0, 0, 0]])
    finally:
        backend.close()
