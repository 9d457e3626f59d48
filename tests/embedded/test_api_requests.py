"""GET /v1/requests/{request_id} on the embedded default: the owner reads a sync answer and a batch item's result,
anyone else finds nothing."""

from __future__ import annotations

import base64
import time

import pytest

from tests.api_helpers import api_client, photo_bytes, wait_batch_done
from transforms.settings import REPO_ROOT, Settings

SCENE = "scene-classification"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(var_dir=tmp_path_factory.mktemp("requests"), model_store=REPO_ROOT / "var" / "models",
                        micro_batch_max_wait_ms=20, _env_file=None)
    with api_client(settings) as pair:
        yield pair


def get_when_written(client, headers, request_id: str, timeout_s: float = 10) -> dict:
    """Sync request rows are written in the background (IMGREC_REQUEST_ROWS_LINGER_MS), so poll briefly."""
    deadline = time.monotonic() + timeout_s
    while (r := client.get(f"/v1/requests/{request_id}", headers=headers)).status_code == 404:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_owner_reads_a_sync_answer_and_others_find_nothing(client) -> None:
    c, headers = client
    body = {"image_data": base64.b64encode(photo_bytes("coffee", size=200)).decode(), "model_id": SCENE}
    answer = c.post("/v1/recognize", json=body, headers=headers).json()
    read = get_when_written(c, headers, answer["request_id"])
    assert (read["status"], read["model_id"], read["model_version"]) == ("done", SCENE, answer["model_version"])
    assert read["labels"] == answer["labels"] and read["error"] is None and read["batch_id"] is None
    assert read["completed_at"] is not None

    other = {"Authorization": f"Bearer {c.app.state.services.store.keys.create('someone-else')}"}
    for request_id, who in ((answer["request_id"], other), ("no-such-request", headers)):
        r = c.get(f"/v1/requests/{request_id}", headers=who)
        assert r.status_code == 404 and r.json()["error"]["code"] == "request_not_found"
    assert c.get(f"/v1/requests/{answer['request_id']}").status_code == 401


def test_a_batch_item_reads_done_with_its_labels_or_failed_with_its_reason(client) -> None:
    c, headers = client
    items = [{"image_data": base64.b64encode(data).decode(), "model_id": SCENE}
             for data in (photo_bytes("chelsea", size=200), photo_bytes("coffee")[:3000])]
    batch_id = c.post("/v1/recognize/batch", json={"items": items}, headers=headers).json()["batch_id"]
    results = wait_batch_done(c, headers, batch_id)["results"]
    done, failed = (get_when_written(c, headers, r["request_id"]) for r in results)
    assert (done["status"], done["batch_id"], done["index"]) == ("done", batch_id, 0)
    assert done["labels"] == results[0]["labels"] and "cat" in done["labels"][0]["label"]
    assert (failed["status"], failed["index"], failed["labels"]) == ("failed", 1, None)
    assert failed["error"]["code"] == "image_truncated"
