"""`imgrec serve --workers 2` on PostgreSQL and Redis: both worker processes answer on one port, and /metrics adds
up every worker's samples whichever worker serves the scrape."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from runners.stack.components.base import port_open
from runners.stack.ports import free_ports
from tests.api_helpers import photo_bytes
from tests.db_helpers import fresh_database
from transforms.adapters.sql import SqlStore, upgrade
from transforms.settings import REPO_ROOT, Settings

BURST = 16


def _recognize_count(api: str) -> float:
    """Requests to POST /v1/recognize in /metrics (every status)."""
    text = httpx.get(f"{api}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "imgrec_http_request_seconds"
        for sample in family.samples
        if sample.name.endswith("_count") and sample.labels.get("route") == "/v1/recognize"
    )


def _workers_that_answered(metrics_dir: Path) -> set[str]:
    """Worker pids with a POST /v1/recognize sample in their own metric file."""
    return {
        path.stem.rsplit("_", 1)[1]
        for path in metrics_dir.glob("histogram_*.db")
        for key, *_ in MmapedDict.read_all_values_from_file(str(path))
        if json.loads(key)[0] == "imgrec_http_request_seconds" and json.loads(key)[2].get("route") == "/v1/recognize"
    }


def test_two_workers_share_a_port_and_their_metrics(postgres_url: str, redis_url: str, tmp_path) -> None:
    url = fresh_database(postgres_url, "workers_")
    upgrade(url)
    port = free_ports(1)[0]
    env = os.environ | {
        "IMGREC_DATABASE_URL": url,
        "IMGREC_REDIS_URL": redis_url,
        "IMGREC_VAR_DIR": str(tmp_path / "var"),
        "IMGREC_MODEL_STORE": str(Settings().resolved_model_store),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    store = SqlStore.from_url(url)
    try:
        deadline = time.monotonic() + 120
        while not (port_open("127.0.0.1", port) and httpx.get(f"{api}/healthz", timeout=5).status_code == 200):
            assert time.monotonic() < deadline, "the API did not start"
            assert server.poll() is None, "the API exited"
            time.sleep(0.3)
        workers = [p for p in psutil.Process(server.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        headers = {"Authorization": f"Bearer {store.keys.create('workers')}"}
        body = {"model_id": "scene-classification", "image_data": base64.b64encode(photo_bytes(size=96)).decode()}

        def recognize(_: int) -> int:  # a new connection each time, so the kernel spreads them over both workers
            return httpx.post(f"{api}/v1/recognize", json=body, headers=headers, timeout=60).status_code

        sent = 0
        with ThreadPoolExecutor(BURST) as pool:  # bursts until the kernel has handed requests to both workers
            while len(_workers_that_answered(tmp_path / "var" / "prometheus-multiproc")) < 2:
                assert sent < 20 * BURST, "every request went to one worker"
                assert list(pool.map(recognize, range(BURST))) == [200] * BURST
                sent += BURST
        # Each scrape lands on either worker; each must count the requests of both.
        assert [_recognize_count(api) for _ in range(6)] == [sent] * 6
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        store.close()
