"""The one model-handler interface, in the spirit of Apache Beam's `ModelHandler`.

A handler turns decoded images into the model's input tensor and the model's raw outputs back into labels in
original-image pixel coordinates. Running the model is the inference back end's job, so the same handler serves
in-process ONNX Runtime, Triton, a Flink operator and a benchmark loop. Adding a model is one handler file plus a
registry row (`models/registry.json`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image

MODEL_STORE_SCHEME = "model-store"
# The input of the graph a back end serves (`transforms/adapters/served_graph.py`): uint8 pixels, batch x height x
# width x RGB, normalised inside the graph.
PIXELS_INPUT = "pixels"


@dataclass(frozen=True)
class Label:
    """One recognised label; `bounding_box` is [x_min, y_min, x_max, y_max] in original pixels, None for classifiers."""

    label: str
    score: float
    bounding_box: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "score": round(float(self.score), 6)}
        if self.bounding_box is not None:
            out["bounding_box"] = [round(float(v), 2) for v in self.bounding_box]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(d["label"], float(d["score"]), d.get("bounding_box"))


@dataclass(frozen=True)
class ModelVersion:
    """A registry row: one version of one model."""

    model_id: str
    version: str
    handler: str
    artifact_uri: str
    framework: str
    input_shape: list[int]
    default_confidence_threshold: float
    min_label_count: int
    is_active: bool = True
    canary_weight: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def triton_name(self) -> str:
        """Model name in the Triton repository (Triton versions are integers; ours are strings)."""
        return f"{self.model_id}"

    def artifact_path(self, model_store: Path) -> Path:
        """Local path of the ONNX artifact: `model-store://<rel>` lives in the model store, `file://` anywhere."""
        uri = urlparse(self.artifact_uri)
        if uri.scheme == MODEL_STORE_SCHEME:
            return model_store / (uri.netloc + unquote(uri.path))
        if uri.scheme == "file":
            return Path(unquote(uri.path))
        raise ValueError(f"{self.model_id} v{self.version}: cannot open artifact {self.artifact_uri!r} locally")


@dataclass
class PreprocessMeta:
    """What postprocess needs to map outputs back to the original image (size, scale, padding)."""

    width: int
    height: int
    scale_x: float = 1.0
    scale_y: float = 1.0
    pad_x: float = 0.0
    pad_y: float = 0.0


@dataclass(frozen=True)
class Normalisation:
    """What turns a model's pixels (`ModelHandler.pixels`: uint8, height x width x RGB) into its float input:
    channel order, per-channel mean and std on the 0-255 scale (in the model's channel order) and layout.

    Kept apart from the pixels so that uint8 tensors (4x smaller than float32) travel between the steps of a path
    and to the back end: the graph it serves does this in front of the model (`served_graph`). `apply` is the
    reference the served graph is tested against, and what feeds an artifact run directly (`preprocess`).
    """

    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    bgr: bool = False
    channels_first: bool = True

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """A uint8 batch (N, H, W, 3) of RGB pixels -> the float32 model input, (N, 3, H, W) or (N, H, W, 3)."""
        x = pixels.astype(np.float32)
        if self.bgr:
            x = x[..., ::-1]
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.channels_first else x)


@dataclass
class Prediction:
    """Postprocessed labels (unthresholded: what the model said) plus the raw per-image outputs, and for an
    embedding model the image's vector (float32, L2-normalised)."""

    labels: list[Label]
    raw: dict[str, np.ndarray]
    embedding: np.ndarray | None = None


class ModelHandler(ABC):
    """Preprocess and postprocess for one model family."""

    name: ClassVar[str]

    def __init__(self, model: ModelVersion, model_store: Path) -> None:
        self.model = model
        self.model_store = model_store

    @cached_property
    def labels(self) -> list[str]:
        """Class names, index-aligned with the model's scores (`labels.json` beside the artifact)."""
        return json.loads(self.model.artifact_path(self.model_store).with_name("labels.json").read_text())

    @property
    @abstractmethod
    def input_name(self) -> str:
        """Name of the artifact's float input tensor (a back end's served graph takes `PIXELS_INPUT` instead)."""

    @property
    @abstractmethod
    def output_names(self) -> list[str]:
        """Names of the model's output tensors."""

    @property
    def normalisation(self) -> Normalisation:
        """How this model's float input is made from its pixels (default: the pixel values, channels first)."""
        return Normalisation()

    @abstractmethod
    def pixels(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        """One RGB image -> its pixels at the model's input size (resized, cropped or padded), uint8 height x
        width x RGB, and its mapping meta."""

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """A stacked batch of `pixels` -> the model's float32 input batch."""
        return self.normalisation.apply(pixels)

    def preprocess(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        """One RGB image -> the artifact's float32 input without the batch axis, and its mapping meta (for running
        the artifact itself; back ends take `pixels`)."""
        pixels, meta = self.pixels(image)
        return self.normalise(pixels[None])[0], meta

    @abstractmethod
    def postprocess(self, outputs: dict[str, np.ndarray], meta: PreprocessMeta) -> list[Label]:
        """One image's outputs (batch axis removed) -> labels, best first, not thresholded."""

    def embedding(self, outputs: dict[str, np.ndarray]) -> np.ndarray | None:
        """One image's vector from its outputs (batch axis removed); None for models that give none."""
        return None

    def pixels_batch(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, list[PreprocessMeta]]:
        """Images -> one uint8 batch of their pixels (the served graph's `PIXELS_INPUT`) and their metas."""
        pixels, metas = zip(*(self.pixels(img) for img in images), strict=True)
        return np.stack(pixels), list(metas)

    def postprocess_batch(self, outputs: dict[str, np.ndarray], metas: Sequence[PreprocessMeta]) -> list[Prediction]:
        """Split a batch of outputs per image and postprocess each."""
        preds = []
        for i, meta in enumerate(metas):
            per_image = {name: arr[i] for name, arr in outputs.items()}
            preds.append(Prediction(self.postprocess(per_image, meta), per_image, self.embedding(per_image)))
        return preds
