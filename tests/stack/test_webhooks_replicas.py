"""Two API processes on one PostgreSQL deliver each completion webhook once, with a delivery id."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter

import httpx

from runners.stack.components.base import port_open
from runners.stack.ports import free_ports
from tests.api_helpers import photo_bytes
from tests.db_helpers import fresh_database
from tests.webhook_receiver import webhook_receiver
from transforms.adapters.sql import SqlStore, upgrade
from transforms.settings import REPO_ROOT, Settings

BATCHES = 12


def _database(postgres_url: str) -> str:
    """A database of this test's own, migrated before the replicas start (they would race to migrate it)."""
    url = fresh_database(postgres_url, "replicas_")
    upgrade(url)
    return url


def test_two_api_replicas_deliver_each_webhook_once(postgres_url: str, tmp_path) -> None:
    url = _database(postgres_url)
    ports = free_ports(2)
    replicas = []
    for i, port in enumerate(ports):
        env = os.environ | {
            "IMGREC_DATABASE_URL": url,
            "IMGREC_VAR_DIR": str(tmp_path / f"replica-{i}"),
            "IMGREC_MODEL_STORE": str(Settings().resolved_model_store),
            "IMGREC_FETCH_ALLOW_HOSTS": '["127.0.0.1"]',
        }
        replicas.append(subprocess.Popen(
            [sys.executable, "-m", "runners.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
    store = SqlStore.from_url(url)
    try:
        deadline = time.monotonic() + 90
        while not all(port_open("127.0.0.1", p) for p in ports):
            assert time.monotonic() < deadline, "the replicas did not start"
            assert all(r.poll() is None for r in replicas), "a replica exited"
            time.sleep(0.3)
        headers = {"Authorization": f"Bearer {store.keys.create('replicas')}"}
        image = base64.b64encode(photo_bytes("coffee", size=64)).decode()
        with webhook_receiver(delay_s=0.3) as (hook, received):
            batch_ids = []
            for i in range(BATCHES):  # spread over both replicas
                api = f"http://127.0.0.1:{ports[i % 2]}"
                body = {"items": [{"image_data": image, "model_id": "scene-classification"}], "callback_url": hook}
                r = httpx.post(f"{api}/v1/recognize/batch", json=body, headers=headers, timeout=30)
                assert r.status_code == 202, r.text
                batch_ids.append(r.json()["batch_id"])
            deadline = time.monotonic() + 90
            while len({json.loads(b)["batch_id"] for _, b in received.deliveries}) < BATCHES:
                assert time.monotonic() < deadline, f"{len(received.deliveries)} of {BATCHES} webhooks delivered"
                time.sleep(0.2)
            time.sleep(3)  # both dispatchers poll every second: any second delivery would arrive by now
        per_batch = Counter(json.loads(body)["batch_id"] for _, body in received.deliveries)
        assert per_batch == Counter(dict.fromkeys(batch_ids, 1))
        delivery_ids = [headers_in["x-imgrec-delivery-id"] for headers_in, _ in received.deliveries]
        assert len(set(delivery_ids)) == BATCHES
    finally:
        for replica in replicas:
            os.killpg(replica.pid, 15)
            replica.wait(timeout=30)
        store.close()
