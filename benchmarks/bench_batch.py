"""Batch throughput end to end: API -> Kafka -> Flink -> Triton -> PostgreSQL/Redis, against a raw in-process loop.

One run, on a private stack on free ports under a temporary root:
- images: `--items` (10,000) JPEGs of skimage photographs scaled to at most `--size` px (reduced, so 2 cores finish
  in minutes; the model still sees 224x224), of which `--repeats` (60%) repeat an image first seen at least
  `REPEAT_LAG` items earlier; distinct images differ by a trailer after the JPEG end marker (decoders ignore it,
  the hash changes), so every miss costs the same decode;
- raw baseline: decode + preprocess + ONNX Runtime in one loop over the same images, micro-batches of
  `micro_batch_size`, no cache (what one process does with the model alone);
- pipeline: the items posted inline to POST /v1/recognize/batch in chunks, then GET .../batch/{id} polled until
  every batch has ended; wall time from the first POST to the last batch done (after a warm-up batch).
Reports wall time, images/s, the ratio to the raw loop, Triton's busy fraction (increase of
nv_inference_compute_infer_duration_us over the wall time; queue time and mean batch size beside it) and the cache
hit rate (share of items whose result came from the cache). Prints a table and writes var/bench/batch.json.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import io
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from skimage import data
from sqlalchemy import func, select

from pipelines.submit import job_status
from runners.api_client import ApiClient
from runners.stack.ports import free_ports
from runners.stack.settings import StackSettings
from runners.stack.stack import SERVICES, Stack
from transforms.adapters.sql import SqlStore
from transforms.adapters.sql import tables as t
from transforms.handlers import get_handler
from transforms.intake import decode_image
from transforms.model_registry import find
from transforms.settings import REPO_ROOT, Settings

MODEL_ID = "scene-classification"
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "cat", "immunohistochemistry")
REPEAT_LAG = 256  # a repeat refers to an image posted this many items earlier at least (already in the cache)
PORT_FIELDS = (
    "postgres_port", "redis_port", "kafka_port", "kafka_controller_port", "triton_http_port",
    "triton_grpc_port", "triton_metrics_port", "flink_rest_port", "flink_rpc_port", "api_port",
)
ENDED = ("done", "failed", "partially_failed")
TRITON_COUNTERS = (
    "nv_inference_compute_infer_duration_us", "nv_inference_queue_duration_us", "nv_inference_request_success",
    "nv_inference_exec_count", "nv_inference_count",
)


def base_photos(size: int) -> list[bytes]:
    """The photographs as JPEGs, scaled to at most `size` px on the long side."""
    out = []
    for name in PHOTOS:
        image = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def workload(items: int, repeat_share: float, size: int, seed: int = 7) -> tuple[list[bytes], int]:
    """`items` JPEGs in posting order, and how many of them are distinct."""
    rng = random.Random(seed)
    bases = base_photos(size)
    distinct = max(1, round(items * (1 - repeat_share)))
    kinds = ["new"] * min(distinct, REPEAT_LAG)
    rest = ["new"] * (distinct - len(kinds)) + ["repeat"] * (items - distinct)
    rng.shuffle(rest)
    images: list[bytes] = []
    first_seen: list[int] = []  # position of each distinct image's first appearance
    for position, kind in enumerate(kinds + rest):
        eligible = bisect.bisect_right(first_seen, position - REPEAT_LAG)
        if kind == "repeat" and eligible:
            images.append(images[first_seen[rng.randrange(eligible)]])
            continue
        first_seen.append(position)
        images.append(bases[len(first_seen) % len(bases)] + f"imgrec-bench-{len(first_seen)}".encode())
    return images, len(first_seen)


def raw_loop(images: list[bytes], settings: Settings) -> float:
    """Seconds for decode + preprocess + ONNX Runtime over every image, in micro-batches, one process."""
    model = find(MODEL_ID)
    handler = get_handler(model, settings.resolved_model_store)
    session = ort.InferenceSession(str(model.artifact_path(settings.resolved_model_store)))
    size = settings.micro_batch_size
    began = time.perf_counter()
    for start in range(0, len(images), size):
        tensors = [handler.preprocess(decode_image(b, max_pixels=settings.max_pixels))[0]
                   for b in images[start : start + size]]
        session.run(None, {handler.input_name: np.stack(tensors)})
    return time.perf_counter() - began


def triton_counters(url: str) -> dict[str, float]:
    """Sums of Triton's cumulative counters of the benchmarked model."""
    totals = dict.fromkeys(TRITON_COUNTERS, 0.0)
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        if family.name in totals:  # the parser names counter samples `<family>_total`
            totals[family.name] += sum(s.value for s in family.samples if s.labels.get("model") == MODEL_ID)
    return totals


def chunks(images: list[bytes], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(images), size):
        yield [{"image_data": base64.b64encode(b).decode(), "model_id": MODEL_ID} for b in images[start : start + size]]


def wait_ended(client: ApiClient, batch_ids: list[str], timeout_s: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    ended: dict[str, dict] = {}
    while len(ended) < len(batch_ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(batch_ids) - len(ended)} batches not done within {timeout_s:.0f}s")
        for batch_id in batch_ids:
            if batch_id not in ended:
                status = client.batch_status(batch_id, limit=1)
                if status["status"] in ENDED:
                    ended[batch_id] = status
        time.sleep(0.5)
    return ended


def run_pipeline(stack: Stack, images: list[bytes], chunk: int, timeout_s: float) -> dict:
    """Post the images through the API, wait for every batch; wall time, outcomes, Triton and cache figures."""
    settings = stack.settings
    store = SqlStore.from_url(settings.database_url)
    client = ApiClient(settings.api_url, store.create_api_key("bench-batch"), timeout_s=300)
    try:
        warm = next(chunks([b + b"warm-up" for b in base_photos(160)], 32))
        wait_ended(client, [client.submit_batch(warm)["batch_id"]], timeout_s=180)
        before = triton_counters(settings.triton_metrics_url)
        began = time.monotonic()
        batch_ids = [client.submit_batch(items)["batch_id"] for items in chunks(images, chunk)]
        posted = time.monotonic() - began
        ended = wait_ended(client, batch_ids, timeout_s)
        wall = time.monotonic() - began
        after = triton_counters(settings.triton_metrics_url)
        r, res = t.inference_requests, t.inference_results
        with store.engine.connect() as conn:
            hits, results = conn.execute(
                select(func.count().filter(res.c.cache_hit), func.count())
                .select_from(r.join(res, r.c.request_id == res.c.request_id))
                .where(r.c.batch_id.in_(batch_ids))
            ).one()
    finally:
        client.close()
        store.close()
    delta = {name: after[name] - before[name] for name in TRITON_COUNTERS}
    return {
        "wall_s": round(wall, 2),
        "post_s": round(posted, 2),
        "completed": sum(s["completed_count"] for s in ended.values()),
        "failed": sum(s["failed_count"] for s in ended.values()),
        "results": results,
        "cache_hits": hits,
        "triton": {
            "busy_fraction": round(delta["nv_inference_compute_infer_duration_us"] / (wall * 1e6), 3),
            "queue_fraction": round(delta["nv_inference_queue_duration_us"] / (wall * 1e6), 3),
            "requests": int(delta["nv_inference_request_success"]),
            "executions": int(delta["nv_inference_exec_count"]),
            "inferences": int(delta["nv_inference_count"]),
            "mean_batch": round(delta["nv_inference_count"] / max(1.0, delta["nv_inference_exec_count"]), 1),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=float, default=0.6, help="Share of items repeating an earlier image.")
    parser.add_argument("--size", type=int, default=160, help="Longest side of the posted images (px).")
    parser.add_argument("--chunk", type=int, default=1_000, help="Items per POST /v1/recognize/batch.")
    parser.add_argument("--timeout", type=float, default=900.0, help="Longest wait for the batches (s).")
    args = parser.parse_args(argv or [])  # `python -m benchmarks` passes module names in sys.argv

    images, distinct = workload(args.items, args.repeats, args.size)
    root = Path(tempfile.mkdtemp(prefix="imgrec-bench-batch-"))
    root.chmod(0o755)  # PostgreSQL runs as an unprivileged user when started as root
    app = Settings(model_store=REPO_ROOT / "var" / "models", var_dir=root / "var")
    raw_s = raw_loop(images, app)
    stack = Stack(StackSettings(root=root, **dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True))), app)
    try:
        started = time.monotonic()
        stack.up()
        if stack.notes:
            raise RuntimeError("; ".join(stack.notes))
        while (status := job_status(stack.app_settings)) is None or status.state != "RUNNING":
            if time.monotonic() - started > 180:
                raise RuntimeError(f"the batch job is not running: {status}")
            time.sleep(0.5)
        startup_s = time.monotonic() - started
        pipeline = run_pipeline(stack, images, args.chunk, args.timeout)
    finally:
        stack.stop([*SERVICES, "api"])
        shutil.rmtree(root, ignore_errors=True)

    raw_rate = len(images) / raw_s
    rate = len(images) / pipeline["wall_s"]
    report = {
        "model": MODEL_ID,
        "items": len(images),
        "distinct_images": distinct,
        "repeat_share": round(1 - distinct / len(images), 3),
        "image_max_px": args.size,
        "stack_startup_s": round(startup_s, 1),
        "pipeline": pipeline | {"images_per_s": round(rate, 1)},
        "raw_loop": {"wall_s": round(raw_s, 2), "images_per_s": round(raw_rate, 1)},
        "ratio_to_raw": round(rate / raw_rate, 3),
        "cache_hit_rate": round(pipeline["cache_hits"] / max(1, pipeline["results"]), 3),
    }
    tri = pipeline["triton"]
    rows = [
        ("items (distinct)", f"{len(images)} ({distinct})"),
        ("pipeline wall s", f"{pipeline['wall_s']:.1f} (posting {pipeline['post_s']:.1f})"),
        ("pipeline images/s", f"{rate:.1f}"),
        ("raw loop images/s", f"{raw_rate:.1f} ({raw_s:.1f} s)"),
        ("ratio pipeline/raw", f"{report['ratio_to_raw']:.2f}"),
        ("done / failed", f"{pipeline['completed']} / {pipeline['failed']}"),
        ("cache hit rate", f"{report['cache_hit_rate']:.1%}"),
        ("Triton busy fraction", f"{tri['busy_fraction']:.1%} (queue {tri['queue_fraction']:.1%})"),
        ("Triton inferences / batches", f"{tri['inferences']} / {tri['executions']} (mean {tri['mean_batch']})"),
    ]
    for name, value in rows:
        print(f"{name:<28} {value}")
    out = REPO_ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "batch.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
