"""Image classifiers with ImageNet-style preprocessing: shorter side resize, centre crop, normalise, top-k.

Parameters come from the registry row's `extra`: resize, crop, mean, std (on the 0-1 scale), softmax, top_k.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import Label, ModelHandler, Normalisation, PreprocessMeta
from transforms.handlers.ops import softmax


class ClassifierHandler(ModelHandler):
    name = "classifier"
    output = "logits"

    @property
    def input_name(self) -> str:
        return "input"

    @property
    def output_names(self) -> list[str]:
        return [self.output]

    @property
    def normalisation(self) -> Normalisation:
        p = self.model.extra
        return Normalisation(tuple(255.0 * m for m in p["mean"]), tuple(255.0 * s for s in p["std"]))

    def pixels(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        p = self.model.extra
        w, h = image.size
        scale = p["resize"] / min(w, h)
        rw, rh = max(p["crop"], round(w * scale)), max(p["crop"], round(h * scale))
        left, top = (rw - p["crop"]) // 2, (rh - p["crop"]) // 2
        resized = image.resize((rw, rh), Image.Resampling.BILINEAR)
        return np.asarray(resized.crop((left, top, left + p["crop"], top + p["crop"])), np.uint8), PreprocessMeta(w, h)

    def postprocess(self, outputs: dict[str, np.ndarray], meta: PreprocessMeta) -> list[Label]:
        probs = outputs[self.output].astype(np.float64)
        if self.model.extra.get("softmax", False):
            probs = softmax(probs)
        top = np.argsort(-probs, kind="stable")[: self.model.extra.get("top_k", 5)]
        return [Label(self.labels[i], float(probs[i])) for i in top]
