"""One micro-batch through one model version: pixels, infer, postprocess. Shared by every path.

Back ends serve each model behind its normalisation (`transforms/adapters/served_graph.py`), so what is sent is the
uint8 pixel batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from transforms.backends.base import InferenceBackend
from transforms.handlers.base import PIXELS_INPUT, ModelHandler, ModelVersion, Prediction
from transforms.stages import StageTimer


def infer_images(
    model: ModelVersion,
    handler: ModelHandler,
    backend: InferenceBackend,
    images: Sequence[Image.Image],
    timer: StageTimer | None = None,
) -> list[Prediction]:
    """Decoded RGB images -> unthresholded predictions, one backend call for the whole batch."""
    timer = timer or StageTimer()
    with timer.stage("preprocess"):
        batch, metas = handler.pixels_batch(images)
    return infer_pixels(model, handler, backend, batch, metas, timer)


def infer_pixels(
    model: ModelVersion,
    handler: ModelHandler,
    backend: InferenceBackend,
    batch: np.ndarray,
    metas: Sequence,
    timer: StageTimer | None = None,
) -> list[Prediction]:
    """A uint8 pixel batch (`ModelHandler.pixels`, stacked on axis 0) -> predictions; for paths that make the
    pixels elsewhere."""
    timer = timer or StageTimer()
    with timer.stage("infer"):
        outputs = backend.infer(model, {PIXELS_INPUT: batch}, handler.output_names)
    with timer.stage("postprocess"):
        return handler.postprocess_batch(outputs, metas)
