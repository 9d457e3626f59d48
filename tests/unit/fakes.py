"""In-process stand-ins for the unit layer, where the model is not the point."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from transforms.backends.base import InferenceUnavailable
from transforms.handlers import get_handler
from transforms.handlers.base import PIXELS_INPUT, ModelVersion

TINY = "tiny-rgb"
TINY_LABELS = ["red", "green", "blue"]


class FakeBackend:
    """The `InferenceBackend` port without a model file: it computes what the tiny-rgb model's served graph does
    (the row's normalisation, then logits = 8 x the mean of each channel), so a red image is "red"; it counts its
    calls and can be switched off."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int]] = []  # (model_id, rows) per call
        self.available = True
        self.refused = 0  # calls while switched off

    def infer(
        self, model: ModelVersion, inputs: dict[str, np.ndarray], output_names: list[str]
    ) -> dict[str, np.ndarray]:
        if not self.available:
            self.refused += 1
            raise InferenceUnavailable(f"fake back end is off ({model.model_id})")
        batch = get_handler(model, Path()).normalise(inputs[PIXELS_INPUT])
        self.batches.append((model.model_id, len(batch)))
        return {"logits": 8 * batch.mean(axis=(2, 3))}

    def ready(self) -> bool:
        return self.available

    def close(self) -> None:
        pass


def png(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    """A one-colour PNG."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, "PNG")
    return buf.getvalue()
