"""The numpy building blocks: NMS, softmax, letterbox mapping."""

from __future__ import annotations

import numpy as np
from PIL import Image

from transforms.handlers.base import PreprocessMeta
from transforms.handlers.ops import letterbox, nms, softmax, to_original


def test_nms_suppresses_overlaps_best_first() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float64)
    keep = nms(boxes, np.array([0.8, 0.9, 0.5]), iou=0.5)
    assert keep.tolist() == [1, 2]


def test_nms_per_class_keeps_overlapping_boxes_of_other_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float64)
    assert nms(boxes, np.array([0.9, 0.8]), 0.5, classes=np.array([0, 1])).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.5, classes=np.array([3, 3])).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_softmax_is_stable_and_normalised() -> None:
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_letterbox_keeps_aspect_and_maps_back() -> None:
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    arr, meta = letterbox(image, 50)
    assert arr.shape == (50, 50, 3)
    assert arr[:25, :, 0].min() == 255 and arr[25:].max() == 0  # image on top, zero padding below
    box = to_original(np.array([[5.0, 5.0, 50.0, 40.0]]), meta)
    np.testing.assert_allclose(box, [[20, 20, 200, 100]])  # scaled by 4, clipped to the image


def test_to_original_removes_padding() -> None:
    meta = PreprocessMeta(100, 100, scale_x=2.0, scale_y=2.0, pad_x=10, pad_y=20)
    np.testing.assert_allclose(to_original(np.array([[30.0, 40.0, 50.0, 60.0]]), meta), [[10, 10, 20, 20]])
