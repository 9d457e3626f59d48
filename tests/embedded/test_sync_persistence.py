"""The sync path answers before its bookkeeping is written: raw outputs and request rows go through background
writers. A clean shutdown writes all of it; per-stage timings come back as Server-Timing and as metrics."""

from __future__ import annotations

import base64

import numpy as np

from tests.api_helpers import api_client, photo_bytes
from transforms.adapters.fsspec import FsspecBlobStore
from transforms.adapters.sql import SqlStore
from transforms.handlers import get_handler
from transforms.model_registry import find
from transforms.raw_outputs import decode_raw, encode_raw
from transforms.settings import REPO_ROOT, Settings
from transforms.stages import parse_server_timing

MODEL_STORE = REPO_ROOT / "var" / "models"
DETECTION = "object-detection"


def test_raw_form_is_float16_and_round_trips() -> None:
    raw = {"scores": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4), "ids": np.arange(3, dtype=np.int64)}
    back = decode_raw(encode_raw(raw))
    assert back["scores"].dtype == np.float16 and back["ids"].dtype == np.int64
    np.testing.assert_allclose(back["scores"], raw["scores"], atol=1e-3)
    np.testing.assert_array_equal(back["ids"], raw["ids"])


def test_clean_shutdown_writes_every_row_and_raw_output(tmp_path) -> None:
    # Rows linger a minute before a write unless the shutdown flushes them: only `close` can have written them.
    settings = Settings(var_dir=tmp_path, model_store=MODEL_STORE, request_rows_linger_ms=60_000, _env_file=None)
    data = photo_bytes("astronaut", size=320)
    body = {"image_data": base64.b64encode(data).decode(), "model_id": DETECTION}
    with api_client(settings) as (client, headers):
        # Many requests in a burst, then shutdown at once: whatever is still queued must be written by close.
        misses = [
            client.post(
                "/v1/recognize",
                json={**body, "image_data": base64.b64encode(data + f"trailer-{i}".encode()).decode()},
                headers=headers,
            ).json()
            for i in range(6)
        ]
        hits = [client.post("/v1/recognize", json=body, headers=headers).json() for _ in range(2)]
    answered = misses + hits
    assert [a["cache_hit"] for a in answered] == [False] * 6 + [False, True]

    store = SqlStore.from_url(settings.resolved_database_url)
    blobs = FsspecBlobStore(settings.resolved_blob_root)
    model = find(DETECTION)
    output_names = get_handler(model, MODEL_STORE).output_names
    try:
        for answer in answered:
            row = store.requests.get(answer["request_id"])
            assert row is not None and row["status"] == "done", answer
            assert row["labels"] == answer["labels"] and row["cache_hit"] == answer["cache_hit"]
            if answer["cache_hit"]:
                assert row["raw_output_path"] is None
                continue
            raw = decode_raw(blobs.get(row["raw_output_path"]))
            assert sorted(raw) == sorted(output_names)
            assert all(a.dtype == np.float16 and a.size > 0 for a in raw.values())
    finally:
        store.close()


def test_stage_timings_come_back_as_server_timing_and_metrics(tmp_path) -> None:
    settings = Settings(var_dir=tmp_path, model_store=MODEL_STORE, _env_file=None)
    image = base64.b64encode(photo_bytes("coffee", size=200)).decode()
    body = {"image_data": image, "model_id": "scene-classification"}
    with api_client(settings) as (client, headers):
        miss = client.post("/v1/recognize", json=body, headers=headers)
        hit = client.post("/v1/recognize", json=body, headers=headers)
        metrics = client.get("/metrics").text
    miss_stages = parse_server_timing(miss.headers["server-timing"])
    hit_stages = parse_server_timing(hit.headers["server-timing"])
    assert {
        "auth",
        "parse",
        "base64",
        "route",
        "hash",
        "cache_get",
        "decode",
        "preprocess",
        "infer",
        "postprocess",
        "raw_output",
        "cache_put",
        "threshold",
        "store",
        "total",
    } <= set(miss_stages)
    assert {"cache_get", "threshold", "store", "total"} <= set(hit_stages) and "infer" not in hit_stages
    assert miss_stages["total"] >= miss_stages["infer"] > 0
    for path, stage in (("sync_miss", "infer"), ("sync_miss", "raw_output"), ("sync_hit", "cache_get")):
        assert f'imgrec_stage_seconds_count{{path="{path}",stage="{stage}"}}' in metrics
