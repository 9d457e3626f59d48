"""A PostgreSQL outage under a running API: never a 500. Endpoints that need the database answer 503
`database_unavailable` with Retry-After; the sync path, whose rows are written in the background, answers (for a key
and a model read within their cache TTLs), and those rows land once the database is back. The API serves again
without a restart."""

from __future__ import annotations

import base64
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.stack.components.postgres import Postgres
from runners.stack.ports import free_ports
from runners.stack.settings import StackSettings
from tests.api_helpers import api_client, photo_bytes
from transforms.settings import REPO_ROOT, Settings

SCENE = "scene-classification"


@pytest.fixture
def own_postgres(stack_root: Path) -> Iterator[Postgres]:
    """A PostgreSQL of this test's own, so killing it disturbs no other test."""
    postgres = Postgres(StackSettings(root=stack_root, postgres_port=free_ports(1)[0]))
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.stop()


def _image(size: int) -> dict:
    return {"image_data": base64.b64encode(photo_bytes("coffee", size=size)).decode(), "model_id": SCENE}


def test_every_endpoint_is_503_database_unavailable_while_postgres_is_down(own_postgres: Postgres, tmp_path) -> None:
    settings = Settings(var_dir=tmp_path, model_store=REPO_ROOT / "var" / "models", _env_file=None,
                        database_url=own_postgres.url)
    with api_client(settings) as (client, headers):
        hit = _image(97)
        first = client.post("/v1/recognize", json=hit, headers=headers)
        assert first.status_code == 200, first.text
        first_request = first.json()["request_id"]
        batch = client.post("/v1/recognize/batch", json={"items": [_image(98)]}, headers=headers).json()["batch_id"]
        other_key = client.app.state.services.store.keys.create("not-yet-seen")

        os.killpg(own_postgres.pid(), signal.SIGKILL)
        answered = []
        for body in (_image(99), hit):  # a miss and a hit
            # The key and the model's rows were read less than their cache TTLs (30 s) ago, and the request rows
            # are written behind the answer: the sync path answers through the outage.
            r = client.post("/v1/recognize", json=body, headers=headers)
            assert r.status_code == 200, r.text
            answered.append(r.json()["request_id"])
        calls = {
            "batch submit": lambda: client.post("/v1/recognize/batch", json={"items": [_image(100)]}, headers=headers),
            "batch status": lambda: client.get(f"/v1/recognize/batch/{batch}", headers=headers),
            "unseen key": lambda: client.get(f"/v1/recognize/batch/{batch}",
                                             headers={"Authorization": f"Bearer {other_key}"}),
            "request status": lambda: client.get(f"/v1/requests/{first_request}", headers=headers),
            "list models": lambda: client.get("/v1/models", headers=headers),
            "one model": lambda: client.get(f"/v1/models/{SCENE}", headers=headers),
            "search by image": lambda: client.post("/v1/search/similar", json={"image_data": _image(101)["image_data"]},
                                                   headers=headers),
        }
        for name, call in calls.items():
            r = call()
            assert r.status_code == 503, (name, r.status_code, r.text)
            assert r.json()["error"]["code"] == "database_unavailable", (name, r.text)
            assert int(r.headers["Retry-After"]) > 0, name
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["dependencies"]["database"]["ok"] is False

        own_postgres.start()  # the API reconnects by itself
        assert client.get(f"/v1/recognize/batch/{batch}", headers=headers).status_code == 200
        assert client.post("/v1/recognize", json=hit, headers=headers).json()["cache_hit"] is True
        store = client.app.state.services.store
        deadline = time.monotonic() + 60
        while not all(store.requests.get(rid) for rid in answered):
            assert time.monotonic() < deadline, "rows of requests answered during the outage were lost"
            time.sleep(0.5)
