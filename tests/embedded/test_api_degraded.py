"""Dependency faults degrade: Redis down still answers; the inference server down answers 503 + Retry-After."""

from __future__ import annotations

import base64

from runners.stack.ports import free_ports
from tests.api_helpers import api_client, photo_bytes
from transforms.settings import REPO_ROOT, Settings


def settings_for(tmp_path, **update) -> Settings:
    return Settings(var_dir=tmp_path, model_store=REPO_ROOT / "var" / "models", _env_file=None, **update)


def test_redis_down_still_answers(tmp_path) -> None:
    with api_client(settings_for(tmp_path, redis_url=f"redis://127.0.0.1:{free_ports(1)[0]}/0")) as (client, headers):
        body = {
            "image_data": base64.b64encode(photo_bytes("coffee", size=128)).decode(),
            "model_id": "scene-classification",
        }
        first = client.post("/v1/recognize", json=body, headers=headers)
        second = client.post("/v1/recognize", json=body, headers=headers)
        assert first.status_code == second.status_code == 200, first.text
        assert second.json()["cache_hit"] is False  # no cache, but an answer
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["dependencies"]["cache"]["ok"] is False


def test_inference_server_down_is_503_with_retry_after(tmp_path) -> None:
    with api_client(settings_for(tmp_path, triton_url=f"127.0.0.1:{free_ports(1)[0]}")) as (client, headers):
        body = {
            "image_data": base64.b64encode(photo_bytes("coffee", size=129)).decode(),
            "model_id": "scene-classification",
        }
        r = client.post("/v1/recognize", json=body, headers=headers)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "inference_unavailable" and int(r.headers["Retry-After"]) > 0
        assert client.get("/readyz").status_code == 503
