"""One micro-batch through one model version: preprocess, infer, postprocess. Shared by every path."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from transforms.backends.base import InferenceBackend
from transforms.handlers.base import ModelHandler, ModelVersion, Prediction
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
        batch, metas = handler.preprocess_batch(images)
    return infer_tensors(model, handler, backend, batch, metas, timer)


def infer_tensors(
    model: ModelVersion,
    handler: ModelHandler,
    backend: InferenceBackend,
    batch: np.ndarray,
    metas: Sequence,
    timer: StageTimer | None = None,
) -> list[Prediction]:
    """Already preprocessed tensors (stacked on axis 0) -> predictions; for paths that preprocess elsewhere."""
    timer = timer or StageTimer()
    with timer.stage("infer"):
        outputs = backend.infer(model, {handler.input_name: batch}, handler.output_names)
    with timer.stage("postprocess"):
        return handler.postprocess_batch(outputs, metas)
