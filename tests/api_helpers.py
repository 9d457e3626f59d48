"""Shared helpers for API tests: photos as bytes and an app client on given settings."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data as skimage_data

from api.app import create_app
from transforms.settings import REPO_ROOT, Settings


def photo_bytes(name: str = "coffee", fmt: str = "JPEG", size: int | None = None) -> bytes:
    """A real photograph shipped with scikit-image, encoded as `fmt`."""
    img = Image.fromarray(np.asarray(getattr(skimage_data, name)()))
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
        key = app.state.services.store.keys.create("tester")
        yield client, {"Authorization": f"Bearer {key}"}


@contextmanager
def image_server(files: dict[str, tuple[bytes, str]], delay_s: float = 0.0) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving `path -> (body, content type)` after `delay_s`; 404 for the rest."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay_s)
            body, content_type = files.get(self.path, (b"", ""))
            self.send_response(200 if content_type else 404)
            self.send_header("Content-Type", content_type or "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def photo_variants(count: int, name: str = "coffee") -> list[bytes]:
    """`count` distinct JPEGs of one full-size photograph (JPEG quality and a small crop vary, so hashes differ).

    Full size because the real classifier's answer on thumbnails wanders (a 96 px coffee is "consomme").
    """
    image = Image.fromarray(np.asarray(getattr(skimage_data, name)())).convert("RGB")
    out = []
    for i in range(count):
        crop = i // 30
        buf = io.BytesIO()
        image.crop((crop, crop, image.width - crop, image.height - crop)).save(buf, "JPEG", quality=70 + i % 30)
        out.append(buf.getvalue())
    return out


def submit_batch(client: TestClient, headers: dict[str, str], images: list[bytes], model_id: str) -> str:
    """POST the images as one batch (base64 items); its batch id."""
    items = [{"image_data": base64.b64encode(img).decode(), "model_id": model_id} for img in images]
    r = client.post("/v1/recognize/batch", json={"items": items}, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["batch_id"]


def unique_images(count: int) -> list[bytes]:
    """Small JPEGs new to the cache: one photograph with a unique trailer after the end marker (new hash)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(skimage_data.coffee())).convert("RGB").resize((64, 48)).save(buf, "JPEG")
    tag = uuid.uuid4().hex
    return [buf.getvalue() + f"unique-{tag}-{i}".encode() for i in range(count)]


def imgrec(*args: str, env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the `imgrec` CLI as a real process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "runners.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def wait_batch_done(client: TestClient, headers: dict[str, str], batch_id: str, timeout_s: float = 240) -> dict:
    """Poll GET /v1/recognize/batch/{id} (first 1000 results) until the batch has ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/recognize/batch/{batch_id}?limit=1000", headers=headers).json()
        if body["status"] not in ("pending", "processing"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish: {body}")
