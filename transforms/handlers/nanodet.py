"""NanoDet-m 416 (COCO-80): letterboxed BGR normalised input; per stride, sigmoid class scores and GFL box
distributions.

Decode: each grid cell centre ((x + 0.5) * stride) plus the expected distance to each side (softmax over
reg_max + 1 bins, times stride); then per-class NMS. Registry `extra`: score_floor, nms_iou, max_detections.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import Label, ModelHandler, Normalisation, PreprocessMeta
from transforms.handlers.ops import letterbox, nms, softmax, to_original

SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
MAX_CANDIDATES = 1000


def grid_centres(stride: int) -> np.ndarray:
    """(cells, 2) x/y centres of one stride's grid in input pixels, row-major like the model's outputs."""
    n = SIZE // stride
    ys, xs = np.divmod(np.arange(n * n), n)
    return np.stack([xs, ys], axis=1).astype(np.float32) * stride + stride / 2


CENTRES = {s: grid_centres(s) for s in STRIDES}


class NanoDetHandler(ModelHandler):
    name = "nanodet"

    @property
    def input_name(self) -> str:
        return "input"

    @property
    def output_names(self) -> list[str]:
        return [f"{kind}_{s}" for s in STRIDES for kind in ("cls", "reg")]

    @property
    def normalisation(self) -> Normalisation:
        return Normalisation(MEAN_BGR, STD_BGR, bgr=True)

    def pixels(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        return letterbox(image, SIZE)

    def postprocess(self, outputs: dict[str, np.ndarray], meta: PreprocessMeta) -> list[Label]:
        p = self.model.extra
        scores = np.concatenate([outputs[f"cls_{s}"] for s in STRIDES])
        dist = np.concatenate([outputs[f"reg_{s}"] for s in STRIDES]).reshape(-1, 4, REG_MAX + 1)
        centres = np.concatenate([CENTRES[s] for s in STRIDES])
        strides = np.concatenate([np.full(len(CENTRES[s]), s, np.float32) for s in STRIDES])

        cells, classes = np.nonzero(scores > p.get("score_floor", 0.1))
        cand = scores[cells, classes]
        top = np.argsort(-cand, kind="stable")[:MAX_CANDIDATES]
        cells, classes, cand = cells[top], classes[top], cand[top]

        sides = (softmax(dist[cells].astype(np.float64)) @ np.arange(REG_MAX + 1)) * strides[cells, None]
        c = centres[cells]
        boxes = np.concatenate([c - sides[:, :2], c + sides[:, 2:]], axis=1).clip(0, SIZE)
        keep = nms(boxes, cand, p.get("nms_iou", 0.5), classes)[: p.get("max_detections", 100)]
        boxes = to_original(boxes[keep], meta)
        return [
            Label(self.labels[k], float(s), b.tolist())
            for k, s, b in zip(classes[keep], cand[keep], boxes, strict=True)
        ]
