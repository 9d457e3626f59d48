"""Sync latency through the real stack (API process -> PostgreSQL, Redis, Triton), against raw baselines.

Measured in one run on the same photo (skimage `coffee`, JPEG):
- cache miss: POST /v1/recognize with bytes made unique per request (a trailer after the JPEG end marker, which
  decoders ignore), p50/p99 at concurrency 1, 4 and 16, against the raw in-process model (decode + preprocess +
  ONNX Runtime run, same threads);
- cache hit: the same bytes again, p50/p99 against a raw Redis GET of the same cache key.
Prints a table and writes var/bench/sync.json. Uses a private stack on free ports under a temporary root.
"""

from __future__ import annotations

import base64
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import redis
from PIL import Image
from skimage import data

from runners.stack.ports import free_ports
from runners.stack.settings import StackSettings
from runners.stack.stack import Stack
from transforms.adapters.sql import SqlStore
from transforms.cache import CacheKey
from transforms.handlers import get_handler
from transforms.intake import decode_image, sha256_hex
from transforms.model_registry import find
from transforms.settings import REPO_ROOT, Settings

MODEL_ID = "scene-classification"
CONCURRENCY = (1, 4, 16)
REQUESTS_PER_LEVEL = {1: 40, 4: 80, 16: 160}
HIT_REQUESTS = 300


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "n": len(ordered),
    }


def timed(fn: Callable[[int], object], count: int, concurrency: int) -> list[float]:
    def one(i: int) -> float:
        began = time.perf_counter()
        fn(i)
        return time.perf_counter() - began

    fn(-1)  # warm-up
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(count)))


def photo() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(data.coffee())).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    jpeg = photo()
    model = find(MODEL_ID)
    settings = Settings(model_store=REPO_ROOT / "var" / "models")
    handler = get_handler(model, settings.resolved_model_store)
    session = ort.InferenceSession(str(model.artifact_path(settings.resolved_model_store)))

    def raw_model(_: int) -> None:
        tensor, _meta = handler.preprocess(decode_image(jpeg, max_pixels=settings.max_pixels))
        session.run(None, {handler.input_name: tensor[None]})

    root = Path(tempfile.mkdtemp(prefix="imgrec-bench-"))
    root.chmod(0o755)
    names = ("postgres_port", "redis_port", "triton_http_port", "triton_grpc_port", "triton_metrics_port", "api_port")
    stack = Stack(
        StackSettings(root=root, **dict(zip(names, free_ports(len(names)), strict=True))),
        Settings(model_store=settings.resolved_model_store),
    )
    components = ["postgres", "redis", "triton", "api"]
    results: dict[str, dict] = {}
    try:
        stack.start(components[:-1])
        stack.start(["api"])  # after the database exists and is migrated
        store = SqlStore.from_url(stack.settings.database_url)
        key = store.create_api_key("bench")
        store.close()
        client = httpx.Client(
            base_url=stack.settings.api_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=32),
        )

        def post(data: bytes) -> dict:
            r = client.post("/v1/recognize", json={"model_id": MODEL_ID, "image_data": base64.b64encode(data).decode()})
            r.raise_for_status()
            return r.json()

        for c in CONCURRENCY:
            n = REQUESTS_PER_LEVEL[c]
            base = percentiles(timed(raw_model, n, c))
            miss = percentiles(timed(lambda i, c=c: post(jpeg + f"miss-{c}-{i}".encode()), n, c))
            results[f"miss_c{c}"] = {
                "api": miss,
                "raw_model": base,
                "p50_ratio": round(miss["p50_ms"] / base["p50_ms"], 2),
                "p99_ratio": round(miss["p99_ms"] / base["p99_ms"], 2),
            }
        answer = post(jpeg)  # warms the cache entry of the plain photo
        assert post(jpeg)["cache_hit"], "second call must be a cache hit"
        rds = redis.Redis.from_url(stack.settings.redis_url)
        redis_key = CacheKey(sha256_hex(jpeg), MODEL_ID, answer["model_version"]).redis_key()
        assert rds.get(redis_key) is not None
        hit = percentiles(timed(lambda _: post(jpeg), HIT_REQUESTS, 1))
        raw_get = percentiles(timed(lambda _: rds.get(redis_key), HIT_REQUESTS, 1))
        results["hit_c1"] = {
            "api": hit,
            "raw_redis_get": raw_get,
            "p50_ratio": round(hit["p50_ms"] / raw_get["p50_ms"], 2),
            "p99_ratio": round(hit["p99_ms"] / raw_get["p99_ms"], 2),
        }
        client.close()
    finally:
        stack.stop(components)
    print(f"{'case':<10} {'api p50/p99 ms':>18} {'baseline p50/p99 ms':>22} {'ratio p50/p99':>15}")
    for case, r in results.items():
        b = r.get("raw_model") or r["raw_redis_get"]
        print(
            f"{case:<10} {r['api']['p50_ms']:>8.1f} / {r['api']['p99_ms']:<7.1f} "
            f"{b['p50_ms']:>10.2f} / {b['p99_ms']:<9.2f} {r['p50_ratio']:>6} / {r['p99_ratio']}"
        )
    out = REPO_ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sync.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
