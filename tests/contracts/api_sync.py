"""POST /v1/recognize end to end, the same on the embedded default and on the real stack."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.api_helpers import image_server, photo_bytes
from transforms.settings import REPO_ROOT, Settings

MODEL_STORE = REPO_ROOT / "var" / "models"
SCENE = "scene-classification"


def app_settings(var: Path, **ports: str | None) -> Settings:
    """Settings of an app on `var`; 127.0.0.1 is allow-listed so a local HTTP server can serve image URLs (every
    other private address is not)."""
    return Settings(
        var_dir=var, model_store=MODEL_STORE, fetch_allow_hosts=["127.0.0.1"], _env_file=None, **ports
    )


def post_image(client, headers, data: bytes, **fields):
    body = {"image_data": base64.b64encode(data).decode(), "model_id": SCENE, **fields}
    return client.post("/v1/recognize", json=body, headers=headers)


def _tiny(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


BAD_INPUTS = [
    ({"image_data": "not base64!!", "model_id": SCENE}, 400, "bad_base64"),
    ({"model_id": SCENE}, 400, "no_image"),
    ({"image_data": "aGVsbG8=", "image_url": "http://example.com/a.jpg", "model_id": SCENE}, 400, "url_and_data"),
    ({"image_data": base64.b64encode(b"hello, not an image").decode(), "model_id": SCENE}, 422, "not_an_image"),
    ({"image_data": base64.b64encode(_tiny("PNG")).decode(), "model_id": "no-such-model"}, 404, "unknown_model"),
    (
        {"image_data": base64.b64encode(_tiny("PNG")).decode(), "model_id": SCENE, "confidence_threshold": 1.5},
        422,
        "bad_threshold",
    ),
    ({"image_data": base64.b64encode(_tiny("TIFF")).decode(), "model_id": SCENE}, 415, "unsupported_format"),
    (
        {"image_data": base64.b64encode(photo_bytes("coffee")[:5000]).decode(), "model_id": SCENE},
        422,
        "image_truncated",
    ),
    ({"image_url": "http://[::1]:9/x.jpg", "model_id": SCENE}, 422, "url_forbidden"),
    ({"image_url": "http://169.254.169.254/latest/meta-data", "model_id": SCENE}, 422, "url_forbidden"),
    ({"image_url": "ftp://example.com/x.jpg", "model_id": SCENE}, 400, "bad_url"),
    ({"image_url": "http:///x.jpg", "model_id": SCENE}, 400, "bad_url"),
    ({"model_id": SCENE, "unexpected": 1}, 422, "invalid_request"),
]


class RecognizeContract:
    """Run against a module-scoped `client` fixture: (TestClient of a started app, auth headers)."""

    def test_recognize_then_cache_hit_with_identical_labels(self, client) -> None:
        c, headers = client
        data = photo_bytes("coffee", size=300)
        first = post_image(c, headers, data)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["status"] == "done" and body["model_id"] == SCENE and body["model_version"] == "1"
        assert body["labels"][0]["label"] == "espresso"
        assert "bounding_box" not in body["labels"][0]  # classifiers have no boxes
        second = post_image(c, headers, data).json()
        assert second["cache_hit"] is True and second["labels"] == body["labels"]
        assert second["request_id"] != body["request_id"]

    def test_threshold_override_is_served_from_the_cache(self, client) -> None:
        c, headers = client
        data = photo_bytes("coffee", size=301)
        strict = post_image(c, headers, data, confidence_threshold=0.99, min_label_count=0).json()
        assert strict["labels"] == [] and strict["threshold_applied"] == 0.99
        loose = post_image(c, headers, data, confidence_threshold=0.0001).json()
        assert loose["cache_hit"] is True and len(loose["labels"]) > 1
        fallback = post_image(c, headers, data, confidence_threshold=1.0, min_label_count=1).json()
        assert fallback["cache_hit"] is True and len(fallback["labels"]) == 1
        assert fallback["threshold_applied"] < 1.0  # lowered in 0.05 steps until one label qualified

    def test_multipart_upload_and_png(self, client) -> None:
        c, headers = client
        data = photo_bytes("chelsea", fmt="PNG", size=224)
        r = c.post(
            "/v1/recognize", files={"file": ("cat.png", data, "image/png")}, data={"model_id": SCENE}, headers=headers
        )
        assert r.status_code == 200, r.text
        assert any("cat" in lbl["label"] for lbl in r.json()["labels"])

    def test_detector_returns_boxes_in_image_pixels(self, client) -> None:
        c, headers = client
        data = photo_bytes("astronaut")
        r = c.post(
            "/v1/recognize",
            json={"image_data": base64.b64encode(data).decode(), "model_id": "object-detection"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        person = [lbl for lbl in r.json()["labels"] if lbl["label"] == "person"]
        assert person, r.json()
        x0, y0, x1, y1 = person[0]["bounding_box"]
        assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512

    def test_image_url_is_fetched(self, client) -> None:
        c, headers = client
        with image_server(
            {
                "/cat.png": (photo_bytes("chelsea", fmt="PNG", size=224), "image/png"),
                "/page": (b"<html></html>", "text/html"),
            }
        ) as base:
            r = c.post("/v1/recognize", json={"image_url": f"{base}/cat.png", "model_id": SCENE}, headers=headers)
            assert r.status_code == 200, r.text
            assert any("cat" in lbl["label"] for lbl in r.json()["labels"])
            r = c.post("/v1/recognize", json={"image_url": f"{base}/page", "model_id": SCENE}, headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (415, "url_not_image")
            r = c.post("/v1/recognize", json={"image_url": f"{base}/missing.jpg", "model_id": SCENE}, headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (422, "url_fetch_failed")

    @pytest.mark.parametrize(("body", "status", "code"), BAD_INPUTS, ids=[c for _, _, c in BAD_INPUTS])
    def test_bad_input_gets_a_clear_4xx(self, client, body, status, code) -> None:
        c, headers = client
        r = c.post("/v1/recognize", json=body, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert r.json()["error"]["message"]

    def test_over_two_megabytes_points_to_the_batch_endpoint(self, client) -> None:
        c, headers = client
        big = photo_bytes("astronaut", fmt="PNG", size=1600)
        assert len(big) > 2 * 1024 * 1024
        r = c.post(
            "/v1/recognize", files={"file": ("big.png", big, "image/png")}, data={"model_id": SCENE}, headers=headers
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large"
        assert "/v1/recognize/batch" in r.json()["error"]["message"]

    def test_decompression_bomb_is_refused(self, client) -> None:
        c, headers = client
        buf = io.BytesIO()
        Image.new("1", (20000, 20000)).save(buf, format="PNG")  # 400 Mpx in a few kB
        r = post_image(c, headers, buf.getvalue())
        assert (r.status_code, r.json()["error"]["code"]) == (422, "too_many_pixels")

    def test_gif_first_frame_webp_and_bmp_are_accepted(self, client) -> None:
        c, headers = client
        for fmt in ("GIF", "WEBP", "BMP"):
            r = post_image(c, headers, photo_bytes("coffee", fmt=fmt, size=160))
            assert r.status_code == 200, (fmt, r.text)

    def test_auth_is_required_and_keys_are_checked(self, client) -> None:
        c, _ = client
        r = c.post("/v1/recognize", json={"model_id": SCENE})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
        r = c.post("/v1/recognize", json={"model_id": SCENE}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401

    def test_health_readiness_and_openapi(self, client) -> None:
        c, _ = client
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["ready"] is True and ready["dependencies"]["database"]["ok"] is True
        spec = c.get("/openapi.json").json()
        assert {"/v1/recognize", "/v1/recognize/batch", "/v1/recognize/batch/{batch_id}"} <= set(spec["paths"])
        assert c.get("/healthz").headers["x-request-id"]

    def test_metrics_count_requests_by_route(self, client) -> None:
        c, headers = client
        post_image(c, headers, photo_bytes("coffee", size=300))
        text = c.get("/metrics").text
        assert 'imgrec_http_request_seconds_count{method="POST",route="/v1/recognize",status="200"}' in text
        assert "imgrec_cache_lookups_total" in text
