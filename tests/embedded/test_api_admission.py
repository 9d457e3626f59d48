"""Admission control on the embedded default: per-key rate and concurrency limits (429 + Retry-After), a bounded
sync queue that sheds with 503, a per-caller cap on batch items in flight, and Idempotency-Key on batches."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.api_helpers import api_client, image_server, photo_bytes
from transforms.keys import hash_key
from transforms.settings import REPO_ROOT, Settings

SCENE = "scene-classification"


def settings_for(tmp_path, **update) -> Settings:
    return Settings(var_dir=tmp_path, model_store=REPO_ROOT / "var" / "models", fetch_allow_hosts=["127.0.0.1"],
                    _env_file=None, **update)


def _image() -> dict:
    return {"image_data": base64.b64encode(photo_bytes("coffee", size=80)).decode(), "model_id": SCENE}


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed(tmp_path) -> None:
    with api_client(settings_for(tmp_path)) as (client, headers):
        store = client.app.state.services.store
        slow_key = store.keys.create("slow")
        store.keys.set_limits(hash_key(slow_key), rate_per_s=0.01, burst=2)  # 2 per 200 s: slow machines pass too
        slow = {"Authorization": f"Bearer {slow_key}"}
        body = _image()
        codes = [client.post("/v1/recognize", json=body, headers=slow).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = client.post("/v1/recognize", json=body, headers=slow)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 200
        assert client.post("/v1/recognize", json=body, headers=headers).status_code == 200  # another key


def test_concurrency_per_key_and_the_bounded_sync_queue(tmp_path) -> None:
    settings = settings_for(tmp_path, sync_concurrency=1, sync_queue_size=1, sync_queue_timeout_s=0.5)
    with image_server({"/slow.jpg": (photo_bytes("coffee", size=90), "image/jpeg")}, delay_s=1.5) as base, \
            api_client(settings) as (client, headers):
        store = client.app.state.services.store
        one_at_a_time = store.keys.create("one")
        store.keys.set_limits(hash_key(one_at_a_time), max_concurrency=1)
        slow = {"image_url": f"{base}/slow.jpg", "model_id": SCENE}

        def post(key_headers: dict) -> tuple[int, str, str | None]:
            r = client.post("/v1/recognize", json=slow, headers=key_headers)
            return r.status_code, r.json().get("error", {}).get("code", ""), r.headers.get("Retry-After")

        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(post, {"Authorization": f"Bearer {one_at_a_time}"})
            queue = client.app.state.admission.queue
            _until(queue._slots.locked)
            second_same_key = pool.submit(post, {"Authorization": f"Bearer {one_at_a_time}"}).result()
            waits_then_shed = pool.submit(post, headers)
            _until(lambda: queue.waiting == 1)
            shed_at_once = pool.submit(post, headers).result()
            assert second_same_key[:2] == (429, "too_many_concurrent_requests") and second_same_key[2]
            assert shed_at_once[:2] == (503, "overloaded") and shed_at_once[2]
            assert waits_then_shed.result()[:2] == (503, "overloaded")  # waited 0.5 s, the slot stayed busy
            assert first.result()[0] == 200


def test_batch_items_in_flight_are_capped_per_caller(tmp_path) -> None:
    with api_client(settings_for(tmp_path, max_batch_items_in_flight=2)) as (client, headers):
        r = client.post("/v1/recognize/batch", json={"items": [_image()] * 3}, headers=headers)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_items_in_flight"
        assert int(r.headers["Retry-After"]) >= 1
        assert client.post("/v1/recognize/batch", json={"items": [_image()] * 2}, headers=headers).status_code == 202


def test_idempotency_key_makes_a_retry_return_the_same_batch(tmp_path) -> None:
    with api_client(settings_for(tmp_path)) as (client, headers):
        body = {"items": [_image(), {"image_data": "%%", "model_id": SCENE}]}
        keyed = headers | {"Idempotency-Key": "order-42"}
        first = client.post("/v1/recognize/batch", json=body, headers=keyed)
        again = client.post("/v1/recognize/batch", json=body, headers=keyed)
        assert first.status_code == again.status_code == 202
        assert again.json()["batch_id"] == first.json()["batch_id"]
        assert again.json()["accepted_count"] == 1 and again.json()["rejected"] == first.json()["rejected"]
        assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
        other = client.post("/v1/recognize/batch", json={"items": [_image()]}, headers=keyed)
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
        fresh = client.post("/v1/recognize/batch", json=body, headers=headers | {"Idempotency-Key": "order-43"})
        assert fresh.json()["batch_id"] != first.json()["batch_id"]


def _until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_keys_limits_command_sets_a_keys_limits(tmp_path) -> None:
    from tests.api_helpers import imgrec
    from transforms.adapters.sql import SqlStore, upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    store = SqlStore.from_url(url)
    key = store.keys.create("limited")
    env = os.environ | {"IMGREC_DATABASE_URL": url, "IMGREC_VAR_DIR": str(tmp_path)}
    done = imgrec("keys", "limits", key, "--rate-per-s", "3", "--max-concurrency", "2", env=env)
    assert done.returncode == 0, done.stderr
    record = store.keys.get(key)
    assert (record.rate_per_s, record.max_concurrency, record.burst) == (3.0, 2, None)
    assert imgrec("keys", "limits", "nope", env=env).returncode == 1
