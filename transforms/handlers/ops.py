"""Vectorised numpy building blocks shared by handlers: resizing with its mapping, softmax, NMS."""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import PreprocessMeta


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, PreprocessMeta]:
    """Scale to fit a size x size square keeping the aspect ratio, pad right/bottom with zeros; HWC uint8."""
    w, h = image.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:nh, :nw] = np.asarray(image.resize((nw, nh), Image.Resampling.BILINEAR), np.uint8)
    return canvas, PreprocessMeta(w, h, scale_x=nw / w, scale_y=nh / h)


def to_original(boxes: np.ndarray, meta: PreprocessMeta) -> np.ndarray:
    """[x1, y1, x2, y2] in model-input pixels -> original-image pixels, clipped to the image."""
    out = np.empty_like(boxes, dtype=np.float64)
    out[:, 0::2] = (boxes[:, 0::2] - meta.pad_x) / meta.scale_x
    out[:, 1::2] = (boxes[:, 1::2] - meta.pad_y) / meta.scale_y
    out[:, 0::2] = out[:, 0::2].clip(0, meta.width)
    out[:, 1::2] = out[:, 1::2].clip(0, meta.height)
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first. With `classes`, boxes of different
    classes never suppress each other (they are shifted apart, the usual batched-NMS trick)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if classes is not None:
        boxes = boxes + (classes * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)
