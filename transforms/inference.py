"""One micro-batch through one model version: preprocess, infer, postprocess. Shared by every path."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from transforms.backends.base import InferenceBackend
from transforms.handlers.base import ModelHandler, ModelVersion, Prediction


def infer_images(
    model: ModelVersion, handler: ModelHandler, backend: InferenceBackend, images: Sequence[Image.Image]
) -> list[Prediction]:
    """Decoded RGB images -> unthresholded predictions, one backend call for the whole batch."""
    batch, metas = handler.preprocess_batch(images)
    return infer_tensors(model, handler, backend, batch, metas)


def infer_tensors(
    model: ModelVersion, handler: ModelHandler, backend: InferenceBackend, batch: np.ndarray, metas: Sequence
) -> list[Prediction]:
    """Already preprocessed tensors (stacked on axis 0) -> predictions; for paths that preprocess elsewhere."""
    outputs = backend.infer(model, {handler.input_name: batch}, handler.output_names)
    return handler.postprocess_batch(outputs, metas)


def raw_output_key(model: ModelVersion, image_hash: str) -> str:
    """Where the blob store keeps what one model version output for one image (the same key on every path)."""
    return f"raw/{model.model_id}/{model.version}/{image_hash}.npz"


def raw_output_bytes(prediction: Prediction) -> bytes:
    """The raw per-image outputs as a compressed .npz, for the blob store."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **prediction.raw)
    return buf.getvalue()
