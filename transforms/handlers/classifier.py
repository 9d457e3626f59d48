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
        w, h, crop = *image.size, p["crop"]
        scale = p["resize"] / min(w, h)
        rw, rh = max(crop, round(w * scale)), max(crop, round(h * scale))
        left, top = (rw - crop) // 2, (rh - crop) // 2
        # Only the crop's source region is resampled (at the full resize's scale): a 1 x 4,000 image would
        # otherwise be resized to 256 x 1,024,000 first (2 s and 800 MB) only to keep 224 x 224 of it.
        sx, sy = w / rw, h / rh
        box = (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)
        resized = image.resize((crop, crop), Image.Resampling.BILINEAR, box=box)
        return np.asarray(resized, np.uint8), PreprocessMeta(w, h)

    def postprocess(self, outputs: dict[str, np.ndarray], meta: PreprocessMeta) -> list[Label]:
        probs = outputs[self.output].astype(np.float64)
        if self.model.extra.get("softmax", False):
            probs = softmax(probs)
        top = np.argsort(-probs, kind="stable")[: self.model.extra.get("top_k", 5)]
        return [Label(self.labels[i], float(probs[i])) for i in top]
