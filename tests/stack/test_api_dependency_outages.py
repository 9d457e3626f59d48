"""Every authenticated operation with one dependency down (Redis, Kafka, Triton, the blob store), on the real stack:
the answer the README promises, either a 503 with Retry-After naming the dependency or a degraded answer, and never
a 500. (PostgreSQL down under a running API is `test_api_outages.py`.)

The state the operations read (a batch, a request, a cached image, an embedded image) is made first by an API with
everything up; then an API whose one dependency is an address nobody listens on answers the same caller.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from runners.stack.ports import free_ports
from tests.api_helpers import api_client, photo_bytes
from transforms.settings import Settings

SCENE = "scene-classification"
OK = (200, None)
ACCEPTED = (202, None)


@dataclass(frozen=True)
class Known:
    """What the caller made while every dependency was up."""

    batch_id: str
    request_id: str
    cached: bytes  # recognised once, so its answer is in the Redis cache


SIZES = itertools.count(140)  # a new size each time: an image no earlier call has cached


def image(size: int | None = None) -> str:
    return base64.b64encode(photo_bytes("chelsea", size=size or next(SIZES))).decode()


Operation = Callable[[TestClient, dict[str, str], Known], Response]
OPERATIONS: dict[str, Operation] = {
    "recognize a new image": lambda c, h, k: c.post(
        "/v1/recognize", headers=h, json={"image_data": image(), "model_id": SCENE}),
    "recognize a cached image": lambda c, h, k: c.post(
        "/v1/recognize", headers=h, json={"image_data": base64.b64encode(k.cached).decode(), "model_id": SCENE}),
    "submit a batch": lambda c, h, k: c.post(
        "/v1/recognize/batch", headers=h, json={"items": [{"image_data": image(), "model_id": SCENE}]}),
    "batch status": lambda c, h, k: c.get(f"/v1/recognize/batch/{k.batch_id}", headers=h),
    "request status": lambda c, h, k: c.get(f"/v1/requests/{k.request_id}", headers=h),
    "list models": lambda c, h, k: c.get("/v1/models", headers=h),
    "one model": lambda c, h, k: c.get(f"/v1/models/{SCENE}", headers=h),
    "search by image": lambda c, h, k: c.post("/v1/search/similar", headers=h, json={"image_data": image()}),
}  # fmt: skip

# What each outage does to each operation (README, "POST /v1/recognize" error table and "Faults and outages").
EXPECTED: dict[str, dict[str, tuple[int, str | None]]] = {
    # Redis holds the cache, the routes and the rate counters: all of them turn off, nothing fails.
    "redis": {op: OK for op in OPERATIONS} | {"submit a batch": ACCEPTED},
    # Kafka only carries batches: a batch cannot be queued (nothing is), everything else answers.
    "kafka": {op: OK for op in OPERATIONS} | {"submit a batch": (503, "queue_unavailable")},
    # Triton: what needs a model run waits for it; a batch is queued for the job to infer later.
    "triton": {op: OK for op in OPERATIONS} | {
        "recognize a new image": (503, "inference_unavailable"), "search by image": (503, "inference_unavailable"),
        "submit a batch": ACCEPTED},
    # The blob store holds batch claim checks and raw outputs (written behind the answer, retried).
    "blob store": {op: OK for op in OPERATIONS} | {"submit a batch": (503, "blob_store_unavailable")},
}  # fmt: skip


@pytest.fixture(scope="module")
def known(stack_settings: Settings) -> Known:
    cached = photo_bytes("chelsea", size=130)
    with api_client(stack_settings) as (client, headers):
        r = client.post("/v1/recognize", headers=headers,
                        json={"image_data": base64.b64encode(cached).decode(), "model_id": SCENE})  # fmt: skip
        assert r.status_code == 200, r.text
        batch = client.post("/v1/recognize/batch", headers=headers,
                            json={"items": [{"image_data": image(129), "model_id": SCENE}]})  # fmt: skip
        assert batch.status_code == 202, batch.text
        return Known(batch.json()["batch_id"], r.json()["request_id"], cached)


@pytest.fixture
def degraded(request: pytest.FixtureRequest, stack_settings: Settings) -> Iterator[Settings]:
    """Stack settings with one dependency at an address nobody listens on."""
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    dependency = request.param
    if dependency == "blob store":  # an S3-compatible endpoint that is down
        with mock.patch.dict("os.environ", {"AWS_ENDPOINT_URL": f"http://{dead}", "AWS_ACCESS_KEY_ID": "x",
                                            "AWS_SECRET_ACCESS_KEY": "x", "AWS_MAX_ATTEMPTS": "1"}):  # fmt: skip
            yield stack_settings.model_copy(update={"blob_root": "s3://imgrec-down/blobs"})
        return
    field = {"redis": "redis_url", "kafka": "kafka_bootstrap", "triton": "triton_url"}[dependency]
    value = f"redis://{dead}/0" if dependency == "redis" else dead
    yield stack_settings.model_copy(update={field: value})


@pytest.mark.parametrize("degraded", list(EXPECTED), indirect=True)
def test_every_operation_answers_as_documented_with_a_dependency_down(degraded: Settings, known: Known,
                                                                      request: pytest.FixtureRequest) -> None:
    dependency = request.node.callspec.params["degraded"]
    wrong = {}
    with api_client(degraded) as (client, headers):
        for name, operation in OPERATIONS.items():
            r = operation(client, headers, known)
            status, code = EXPECTED[dependency][name]
            got_code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
            retry = r.status_code != 503 or int(r.headers.get("Retry-After", "0")) > 0
            if (r.status_code, got_code) != (status, code) or not retry:
                wrong[name] = f"{r.status_code} {r.text[:200]} (Retry-After {r.headers.get('Retry-After')})"
            if name == "recognize a cached image" and r.status_code == 200:
                # A cache that is down is a miss (inferred again), never a failure; otherwise it is a hit.
                assert r.json()["cache_hit"] is (dependency != "redis"), (dependency, r.text)
    assert not wrong, f"{dependency} down: {wrong}"
