"""`imgrec serve` as a real process on a free port (embedded default), for tests that need a running server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from runners.stack.ports import free_ports
from transforms.settings import REPO_ROOT

DEV_KEY = "irk_test_dev_key"
SERVICE_URLS = ("IMGREC_DATABASE_URL", "IMGREC_REDIS_URL", "IMGREC_TRITON_URL", "IMGREC_KAFKA_BOOTSTRAP")


@dataclass(frozen=True)
class ServedApi:
    url: str
    env: dict[str, str]
    var: Path
    key: str = DEV_KEY


@contextmanager
def serve_embedded(var: Path, ready_timeout_s: float = 60) -> Iterator[ServedApi]:
    """Start `imgrec serve` with the embedded default under `var`, wait for /readyz, stop it at the end."""
    port = free_ports(1)[0]
    env = {
        **{k: v for k, v in os.environ.items() if k not in SERVICE_URLS},
        "IMGREC_VAR_DIR": str(var),
        "IMGREC_MODEL_STORE": str(REPO_ROOT / "var" / "models"),
        "IMGREC_DEV_API_KEY": DEV_KEY,
    }
    log = (var / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", "serve", "--port", str(port)],
        env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout_s
    try:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"imgrec serve did not become ready:\n{(var / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield ServedApi(url, env, var)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
