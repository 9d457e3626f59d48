"""In-process ONNX Runtime on the tiny generated model (built by `imgrec models build`)."""

from __future__ import annotations

import numpy as np

from tests.unit.test_backends_onnxruntime import colour
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.handlers.base import PIXELS_INPUT
from transforms.model_registry import find
from transforms.settings import get_settings


def test_tiny_model_runs_in_process() -> None:
    backend = OnnxRuntimeBackend(get_settings().resolved_model_store)
    try:
        x = np.concatenate([colour((0, 255, 0)), colour((0, 0, 51))])
        out = backend.infer(find("tiny-rgb"), {PIXELS_INPUT: x}, ["logits"])
        np.testing.assert_allclose(out["logits"], [[0, 8, 0], [0, 0, 1.6]], rtol=1e-6)
        assert backend.ready()
    finally:
        backend.close()
