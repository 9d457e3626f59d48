"""Yahoo open_nsfw: Caffe-style input (256x256 resize, 224 centre crop, BGR minus mean, NHWC) -> [sfw, nsfw].

The reference pipeline also round-trips the crop through JPEG; skipping it moves scores by under 1e-2.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import PreprocessMeta
from transforms.handlers.classifier import ClassifierHandler

RESIZE, CROP = 256, 224
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)


class OpenNsfwHandler(ClassifierHandler):
    name = "open_nsfw"
    output = "probs"

    def preprocess(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        offset = (RESIZE - CROP) // 2
        resized = image.resize((RESIZE, RESIZE), Image.Resampling.BILINEAR)
        arr = np.asarray(resized.crop((offset, offset, offset + CROP, offset + CROP)), np.float32)
        return arr[:, :, ::-1] - MEAN_BGR, PreprocessMeta(*image.size)
