"""Shared helpers for API tests: photos as bytes and an app client on given settings."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from transforms.settings import Settings


def photo_bytes(name: str = "coffee", fmt: str = "JPEG", size: int | None = None) -> bytes:
    """A real photograph shipped with scikit-image, encoded as `fmt`."""
    from skimage import data

    img = Image.fromarray(np.asarray(getattr(data, name)()))
    if size:
        img = img.resize((size, size))
    buf = io.BytesIO()
    img.convert("RGB" if fmt in ("JPEG", "BMP") else img.mode).save(buf, format=fmt)
    return buf.getvalue()


@contextmanager
def api_client(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A started app and the auth header of a fresh caller."""
    app = create_app(settings)
    with TestClient(app) as client:
        key = app.state.services.store.create_api_key("tester")
        yield client, {"Authorization": f"Bearer {key}"}
