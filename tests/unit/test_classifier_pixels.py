"""The classifier's resize + centre crop resamples only the crop's source region, as resize-then-crop would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from transforms.handlers import get_handler
from transforms.model_registry import find

HANDLER = get_handler(find("scene-classification"), Path())
PHOTO = Image.fromarray(samples.astronaut())


def resize_then_crop(image: Image.Image, resize: int = 256, crop: int = 224) -> np.ndarray:
    """The textbook ImageNet preprocessing: the whole image resized (shorter side), then the centre cropped."""
    w, h = image.size
    scale = resize / min(w, h)
    rw, rh = max(crop, round(w * scale)), max(crop, round(h * scale))
    left, top = (rw - crop) // 2, (rh - crop) // 2
    return np.asarray(image.resize((rw, rh), Image.Resampling.BILINEAR).crop((left, top, left + crop, top + crop)))


@pytest.mark.parametrize("size", [(512, 512), (160, 120), (333, 500), (1000, 37), (97, 250), (224, 224)])
def test_the_crop_is_the_textbook_one_to_one_grey_level(size: tuple[int, int]) -> None:
    image = PHOTO.resize(size)
    pixels, meta = HANDLER.pixels(image)
    diff = np.abs(pixels.astype(int) - resize_then_crop(image).astype(int))
    assert pixels.shape == (224, 224, 3) and (meta.width, meta.height) == size
    assert diff.max() <= 1 and diff.mean() < 0.25  # rounding of the resampling weights (one grey level), no more


def test_a_thin_image_is_not_blown_up_before_the_crop() -> None:
    # Resized whole first, 1 x 40,000 pixels would become 256 x 10,240,000 (7.9 GB) to keep 224 x 224 of it.
    pixels, _ = HANDLER.pixels(Image.new("RGB", (1, 40_000), (200, 30, 30)))
    assert pixels.shape == (224, 224, 3) and (pixels == (200, 30, 30)).all()
