"""Yahoo open_nsfw: Caffe-style input (256x256 resize, 224 centre crop, BGR minus mean, NHWC) -> [sfw, nsfw].

The reference pipeline also round-trips the crop through JPEG; skipping it moves scores by under 1e-2.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import Normalisation, PreprocessMeta
from transforms.handlers.classifier import ClassifierHandler

RESIZE, CROP = 256, 224
MEAN_BGR = (104.0, 117.0, 123.0)


class OpenNsfwHandler(ClassifierHandler):
    name = "open_nsfw"
    output = "probs"

    @property
    def normalisation(self) -> Normalisation:
        return Normalisation(MEAN_BGR, bgr=True, channels_first=False)

    def pixels(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        offset = (RESIZE - CROP) // 2
        resized = image.resize((RESIZE, RESIZE), Image.Resampling.BILINEAR)
        crop = resized.crop((offset, offset, offset + CROP, offset + CROP))
        return np.asarray(crop, np.uint8), PreprocessMeta(*image.size)
