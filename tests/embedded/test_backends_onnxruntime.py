"""In-process ONNX Runtime on the tiny generated model (built by `imgrec models build`)."""

from __future__ import annotations

import numpy as np

from tests.unit.test_backends_onnxruntime import colour
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.model_registry import find
from transforms.settings import get_settings


def test_tiny_model_runs_in_process() -> None:
    backend = OnnxRuntimeBackend(get_settings().resolved_model_store)
    try:
        x = np.concatenate([colour((0, 1, 0)), colour((0, 0, 0.5))])
        out = backend.infer(find("tiny-rgb"), {"input": x}, ["logits"])
        np.testing.assert_allclose(out["logits"], [[0, 8, 0], [0, 0, 4]])
        assert backend.ready()
    finally:
        backend.close()
