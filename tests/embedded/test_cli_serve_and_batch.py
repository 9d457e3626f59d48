"""`imgrec serve` as a real process (embedded default) driven by `imgrec batch submit --wait` and `status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runners.stack.ports import free_ports
from tests.api_helpers import imgrec, photo_bytes
from transforms.settings import REPO_ROOT

IMGREC = [sys.executable, "-m", "runners.cli"]
DEV_KEY = "irk_test_dev_key"


@pytest.fixture(scope="module")
def served_api(tmp_path_factory: pytest.TempPathFactory):
    var = tmp_path_factory.mktemp("served")
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "IMGREC_VAR_DIR": str(var),
        "IMGREC_MODEL_STORE": str(REPO_ROOT / "var" / "models"),
        "IMGREC_DEV_API_KEY": DEV_KEY,
    }
    for name in ("IMGREC_DATABASE_URL", "IMGREC_REDIS_URL", "IMGREC_TRITON_URL", "IMGREC_KAFKA_BOOTSTRAP"):
        env.pop(name, None)
    log = (var / "serve.log").open("w")
    proc = subprocess.Popen(
        [*IMGREC, "serve", "--port", str(port)], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError((var / "serve.log").read_text())
    yield url, env, var
    proc.terminate()
    proc.wait(timeout=15)


def test_dev_key_is_printed_and_batch_cli_waits_for_the_result(served_api, tmp_path: Path) -> None:
    url, env, var = served_api
    assert DEV_KEY in (var / "serve.log").read_text()
    photo = tmp_path / "coffee.jpg"
    photo.write_bytes(photo_bytes("coffee", size=180))
    env = {**env, "IMGREC_API_URL": url, "IMGREC_API_KEY": DEV_KEY}
    out = imgrec("batch", "submit", str(photo), str(photo), "--model", "scene-classification", "--wait", env=env)
    assert out.returncode == 0, out.stderr
    batch_id, summary = out.stdout.strip().splitlines()[-2:]
    assert json.loads(summary) == {"status": "done", "completed_count": 2, "failed_count": 0, "total_count": 2}
    out = imgrec("batch", "status", batch_id, "--results", env=env)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["status"] == "done" and lines[1]["labels"][0]["label"] == "espresso"


def test_batch_cli_reports_api_errors(served_api, tmp_path: Path) -> None:
    url, env, _ = served_api
    photo = tmp_path / "x.jpg"
    photo.write_bytes(photo_bytes("coffee", size=50))
    env = {**env, "IMGREC_API_URL": url, "IMGREC_API_KEY": "wrong"}
    out = imgrec("batch", "submit", str(photo), "--model", "scene-classification", env=env)
    assert out.returncode == 1 and "unauthorized" in out.stderr
