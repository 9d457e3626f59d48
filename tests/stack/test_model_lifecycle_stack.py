"""The lifecycle on the real stack (PostgreSQL, Redis, Triton in explicit model-control mode): a second version of
the scene classifier is registered from a file:// artifact, evaluated, given 50% of the traffic, promoted and
rolled back while a client loop keeps calling a real `imgrec serve` process. No request fails, the canary's share
of the traffic is within 4 sigma of 50%, Triton is never restarted, broken artifacts (truncated, wrong input shape)
are refused, and a version that fails the gate is refused promotion (`--force` is tested on the embedded default)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from runners.stack.ports import free_ports
from tests.api_helpers import imgrec, photo_variants
from tests.conftest import TestStack
from tests.stack.test_model_routing_cli import fresh_database
from transforms.settings import REPO_ROOT

MODEL = "scene-classification"
V1 = REPO_ROOT / "var" / "models" / MODEL / "1" / "model.onnx"
CANARY_DRAWS = 300


@dataclass
class ClientLoop:
    """Sends recognise requests from a thread, at most `per_s` a second (a client within the API's default rate
    limit per key): new photos (misses) and one repeated photo (hits)."""

    url: str
    images: list[bytes]
    per_s: float = 25.0
    answers: list[tuple[float, int, str]] = field(default_factory=list)  # (sent at, status, version)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            i, sent = 0, 0.0
            # Paced from the previous send, never catching up after a slow answer: the rate never exceeds per_s.
            while not self.stop.wait(max(0.0, sent + 1 / self.per_s - time.monotonic())):
                image = self.images[(i // 2) % len(self.images)] if i % 2 else self.images[0]
                sent = time.monotonic()
                response = client.post("/v1/recognize", files={"file": ("p.jpg", image)}, data={"model_id": MODEL})
                version = response.json().get("model_version", "") if response.status_code == 200 else ""
                self.answers.append((sent, response.status_code, version))
                i += 1

    def between(self, start: float, end: float) -> list[tuple[float, int, str]]:
        return [a for a in self.answers if start <= a[0] < end]

    def wait_for(self, count: int, since: float, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.between(since, float("inf"))) < count:
            assert time.monotonic() < deadline, f"client loop too slow: {len(self.between(since, float('inf')))}"
            time.sleep(0.1)


@pytest.fixture
def served(postgres_url: str, redis_url: str, triton_url: str, test_stack: TestStack, tmp_path: Path) -> Iterator:
    """`imgrec serve` on a fresh database and a Redis database of its own, and the CLI's environment."""
    env = {
        **os.environ,
        "IMGREC_DATABASE_URL": fresh_database(postgres_url),
        "IMGREC_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/7",
        "IMGREC_TRITON_URL": triton_url,
        "IMGREC_TRITON_REPOSITORY": str(test_stack.stack.settings.triton_repository_dir),
        "IMGREC_VAR_DIR": str(tmp_path / "var"),
        "IMGREC_MODEL_STORE": str(REPO_ROOT / "var" / "models"),
        "IMGREC_AUTH_ENABLED": "false",
    }
    env.pop("IMGREC_KAFKA_BOOTSTRAP", None)
    port = free_ports(1)[0]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", "serve", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _ready(url):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.3)
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        redis.Redis.from_url(env["IMGREC_REDIS_URL"]).flushdb()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def models(env: dict[str, str], *args: str, ok: bool = True) -> str:
    done = imgrec("models", *args, env=env, timeout_s=300)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout if ok else done.stderr


def test_register_evaluate_canary_promote_rollback_under_traffic(
    served: tuple[str, dict[str, str]], test_stack: TestStack, tmp_path: Path
) -> None:
    url, env = served
    triton = test_stack.stack["triton"]
    triton_pid = triton.pid()
    loop = ClientLoop(url, photo_variants(120))
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        loop.wait_for(20, since=0)
        artifact = tmp_path / "upload" / "model.onnx"  # the same network, uploaded again as a new version
        artifact.parent.mkdir()
        shutil.copy(V1, artifact)
        assert "back end READY" in models(
            env, "register", MODEL, "2", "--artifact", artifact.as_uri(), "--handler", "classifier"
        )
        truncated = tmp_path / "upload" / "truncated.onnx"
        truncated.write_bytes(V1.read_bytes()[:100_000])
        assert "artifact_unloadable" in models(
            env, "register", MODEL, "3", "--artifact", truncated.as_uri(), "--handler", "classifier", ok=False
        )
        assert "stored: PASS" in models(env, "evaluate", MODEL, "2")

        models(env, "canary", MODEL, "2", "--weight", "0.5")
        canary_from = time.monotonic()
        loop.wait_for(CANARY_DRAWS, since=canary_from)
        listed = models(env, "list", MODEL)
        promote_from = time.monotonic()
        assert "active" in listed and "canary" in listed and listed.count("READY") == 2
        models(env, "promote", MODEL, "2")
        promoted_at = time.monotonic()
        loop.wait_for(30, since=promoted_at)
        rollback_from = time.monotonic()
        models(env, "rollback", MODEL)
        rolled_back_at = time.monotonic()
        loop.wait_for(30, since=rolled_back_at)

        tiny = REPO_ROOT / "var" / "models" / "tiny-rgb" / "1" / "model.onnx"  # a real model whose input is 3x8x8
        assert "wrong_input_shape" in models(
            env, "register", MODEL, "3", "--artifact", tiny.as_uri(), "--handler", "classifier", ok=False
        )
        # A preprocessing slip: normalised ten times too hard, so the answers go wrong and the gate says no.
        wrong = json.dumps({"std": [0.0229, 0.0224, 0.0225]})
        models(
            env, "register", MODEL, "3", "--artifact", artifact.as_uri(), "--handler", "classifier", "--extra", wrong
        )
        assert "stored: FAIL" in models(env, "evaluate", MODEL, "3")
        refused = models(env, "promote", MODEL, "3", ok=False)
        assert "gate_not_passed" in refused and "--force" in refused
        loop.wait_for(10, since=time.monotonic())
    finally:
        loop.stop.set()
        thread.join(timeout=60)

    failed = [a for a in loop.answers if a[1] != 200]
    assert failed == [] and len(loop.answers) > CANARY_DRAWS + 80
    canary = [v for _, _, v in loop.between(canary_from, promote_from)]
    share, sigma = canary.count("2") / len(canary), (0.25 / len(canary)) ** 0.5
    print(f"canary share {share:.3f} of {len(canary)} requests (sigma {sigma:.3f}); {len(loop.answers)} requests")
    assert abs(share - 0.5) < 4 * sigma, (share, len(canary))
    assert {v for _, _, v in loop.between(promoted_at, rollback_from)} == {"2"}
    assert {v for _, _, v in loop.between(rolled_back_at, float("inf"))} == {"1"}
    assert triton.pid() == triton_pid  # the same server throughout: versions were loaded live

    events = models(env, "events", MODEL)
    assert [line.split()[3] for line in events.splitlines()[:7]] == [
        "evaluate",
        "register",
        "rollback",
        "promote",
        "canary",
        "evaluate",
        "register",
    ]
    models(env, "retire", MODEL, "3", "--drain-s", "0")
    retired = models(env, "retire", MODEL, "2", "--drain-s", "1")
    assert '"2"' not in retired.split("holds", 1)[1] or "UNLOADING" in retired
    assert {r.split()[1]: r.split()[2] for r in models(env, "list", MODEL).splitlines()[1:]} == {
        "1": "active",
        "2": "retired",
        "3": "retired",
    }
