"""POST/GET /v1/recognize/batch on the embedded default: in-process queue and worker threads, signed webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from tests.api_helpers import api_client, photo_bytes, wait_batch_done
from tests.webhook_receiver import webhook_receiver
from transforms.settings import REPO_ROOT, Settings

SCENE = "scene-classification"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("batch-embedded"),
        model_store=REPO_ROOT / "var" / "models",
        fetch_allow_hosts=["127.0.0.1"],
        micro_batch_max_wait_ms=20,
        _env_file=None,
    )
    with api_client(settings) as pair:
        yield pair


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_batch_runs_to_done_with_repeats_cached_and_signed_webhook(client) -> None:
    c, headers = client
    coffee, cat = photo_bytes("coffee", size=200), photo_bytes("chelsea", size=200)
    items = [{"image_data": b64(img), "model_id": SCENE} for img in (coffee, cat, coffee, cat, coffee)]
    items.append({"image_data": "%%%", "model_id": SCENE})  # rejected up front, the rest proceed
    with webhook_receiver(fail_first=1) as (url, received):
        r = c.post("/v1/recognize/batch", json={"items": items, "callback_url": url}, headers=headers)
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["accepted_count"] == 5 and accepted["estimated_completion_seconds"] > 0
        assert accepted["rejected"] == [
            {"index": 5, "code": "bad_base64", "message": accepted["rejected"][0]["message"]}
        ]
        status = wait_batch_done(c, headers, accepted["batch_id"])
        assert (status["status"], status["completed_count"], status["total_count"]) == ("done", 5, 5)
        results = status["results"]
        assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
        assert [r["labels"][0]["label"] for r in results[::2]] == ["espresso"] * 3
        assert all("cat" in r["labels"][0]["label"] for r in results[1::2])
        assert results[0]["labels"] == results[2]["labels"] == results[4]["labels"]
        assert received.event.wait(30), "webhook not delivered"
    headers_in, body = received.deliveries[0]
    secret = c.app.state.services.store.keys.webhook_secret("tester")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers_in["x-signature"], expected)
    payload = json.loads(body)
    again = c.post("/v1/recognize/batch", json={"items": items[:5]}, headers=headers).json()
    repeat = wait_batch_done(c, headers, again["batch_id"])
    assert all(r["cache_hit"] for r in repeat["results"])  # the second submission is served from the cache
    assert [r["labels"] for r in repeat["results"]] == [r["labels"] for r in results]
    assert (payload["batch_id"], payload["status"], payload["completed_count"]) == (accepted["batch_id"], "done", 5)
    attempts = c.app.state.services.store.outbox.attempts(accepted["batch_id"])
    assert [a["status_code"] for a in attempts] == [503, 204]  # the first failure was retried


def test_pagination_and_per_item_errors(client) -> None:
    c, headers = client
    items = [{"image_data": b64(photo_bytes("coffee", size=64 + i)), "model_id": SCENE} for i in range(4)]
    items.append({"image_url": "http://127.0.0.1:9/missing.jpg", "model_id": SCENE})  # fails at fetch time
    batch_id = c.post("/v1/recognize/batch", json={"items": items}, headers=headers).json()["batch_id"]
    status = wait_batch_done(c, headers, batch_id)
    assert (status["status"], status["failed_count"]) == ("partially_failed", 1)
    page = c.get(f"/v1/recognize/batch/{batch_id}?offset=0&limit=2", headers=headers).json()
    assert [r["index"] for r in page["results"]] == [0, 1] and page["next_offset"] == 2
    last = c.get(f"/v1/recognize/batch/{batch_id}?offset=4&limit=2", headers=headers).json()
    assert last["results"][0]["error"]["code"] == "url_fetch_failed" and last["next_offset"] is None


def test_only_the_owner_can_read_a_batch(client) -> None:
    c, headers = client
    batch_id = c.post(
        "/v1/recognize/batch",
        json={"items": [{"image_data": b64(photo_bytes(size=70)), "model_id": SCENE}]},
        headers=headers,
    ).json()["batch_id"]
    other = {"Authorization": "Bearer " + c.app.state.services.store.keys.create("mallory")}
    r = c.get(f"/v1/recognize/batch/{batch_id}", headers=other)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "batch_not_found")


def test_batch_limits_and_validation(client) -> None:
    c, headers = client
    too_many = [{"image_url": "http://example.com/a.jpg", "model_id": SCENE}] * 10_001
    r = c.post("/v1/recognize/batch", json={"items": too_many}, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "batch_too_large")
    r = c.post("/v1/recognize/batch", json={"items": [{"image_data": "%%", "model_id": "nope"}]}, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_valid_items")
    r = c.post("/v1/recognize/batch", json={"items": []}, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
    r = c.post(
        "/v1/recognize/batch",
        json={"items": [{"image_url": "http://example.com/a.jpg", "model_id": SCENE}], "callback_url": "file:///x"},
        headers=headers,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_url")
