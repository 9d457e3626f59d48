"""Batch throughput end to end: API -> Kafka -> Flink -> Triton -> PostgreSQL/Redis, against a raw in-process loop.

One run, on a private stack on free ports under a temporary root:
- workloads: every combination of `--items` (1,000 and 10,000) and `--repeats` (0% and 60%), each `--runs` times
  on the same stack;
- images: `items` JPEGs of skimage photographs scaled to at most `--size` px (reduced, so 2 cores finish
  in minutes; the model still sees 224x224), of which a share `repeats` repeat an image first seen at least
  `REPEAT_LAG` items earlier; distinct images differ by a trailer after the JPEG end marker (decoders ignore it,
  the hash changes), so every miss costs the same decode;
- raw baseline: decode + preprocess + ONNX Runtime in one loop over the distinct images, micro-batches of
  `micro_batch_size`, no cache (what one process does with the model alone on the work that needs a model);
- pipeline: the items posted inline to POST /v1/recognize/batch in chunks, then GET .../batch/{id} polled until
  every batch has ended; wall time from the first POST to the last batch done (after a warm-up batch).
Reports wall time, images/s and, the figure that matters, unique-image throughput (images the pipeline inferred
per second) against the raw loop over the same unique images; CPU per unique image: CPU seconds (from /proc) of
every process of the stack over the run (API, Kafka, Flink, Triton, PostgreSQL, Redis) per image Triton inferred,
against the raw loop's own CPU per image; Triton's busy fraction over the wall time and while
a backlog exists (from the first to the last inference, sampled every second from Triton's metrics:
nv_inference_compute_infer_duration_us), its mean batch size, the cache hit rate, the per-stage time of the job's
Python workers (wall `imgrec_stage_seconds{path="batch"}` and CPU `imgrec_stage_cpu_seconds_total` from the
TaskManager's metrics endpoint), the stack's memory and the load average. Fresh images in each run. Prints a table
and writes var/bench/batch.json.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import io
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from skimage import data
from sqlalchemy import func, select

from benchmarks.common import (
    MODEL_STORE,
    load_average,
    median_of,
    print_table,
    private_stack,
    stack_cpu_s,
    stack_memory,
    unlimited_key,
    write_report,
)
from pipelines.submit import job_status
from runners.api_client import ApiClient
from runners.stack.stack import Stack
from transforms.adapters.sql import SqlStore
from transforms.adapters.sql import tables as t
from transforms.handlers import get_handler
from transforms.intake import decode_image
from transforms.model_registry import find
from transforms.settings import Settings

MODEL_ID = "scene-classification"
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "cat", "immunohistochemistry")
REPEAT_LAG = 256  # a repeat refers to an image posted this many items earlier at least (already in the cache)
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


def workload(items: int, repeat_share: float, size: int, tag: str, seed: int = 7) -> tuple[list[bytes], list[bytes]]:
    """`items` JPEGs in posting order, and the distinct ones (`tag` makes them new to the cache)."""
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
        images.append(bases[len(first_seen) % len(bases)] + f"imgrec-bench-{tag}-{len(first_seen)}".encode())
    return images, [images[i] for i in first_seen]




def raw_loop(images: list[bytes], settings: Settings) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) for decode + preprocess + ONNX Runtime over every image,
    in micro-batches, one process."""
    model = find(MODEL_ID)
    handler = get_handler(model, MODEL_STORE)
    session = ort.InferenceSession(str(model.artifact_path(MODEL_STORE)))
    size = settings.micro_batch_size
    began, cpu_began = time.perf_counter(), time.process_time()
    for start in range(0, len(images), size):
        tensors = [handler.preprocess(decode_image(b, max_pixels=settings.max_pixels))[0]
                   for b in images[start : start + size]]
        session.run(None, {handler.input_name: np.stack(tensors)})
    return time.perf_counter() - began, time.process_time() - cpu_began


def scrape(url: str, names: tuple[str, ...], match: dict[str, str]) -> dict[str, float]:
    """Sums of the named counters' samples whose labels include `match`."""
    totals = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        if family.name in totals:  # the parser names counter samples `<family>_total`
            totals[family.name] += sum(
                s.value for s in family.samples if all(s.labels.get(k) == v for k, v in match.items())
            )
    return totals


def triton_counters(url: str) -> dict[str, float]:
    return scrape(url, TRITON_COUNTERS, {"model": MODEL_ID})


def stage_seconds(url: str) -> dict[str, dict[str, float]]:
    """{stage: {"sum": wall seconds, "count": n, "cpu": CPU seconds}} of imgrec_stage_seconds and
    imgrec_stage_cpu_seconds{path="batch"} from the workers' endpoint."""
    out: dict[str, dict[str, float]] = {}
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return out
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("path") != "batch":
                continue
            if family.name == "imgrec_stage_seconds" and s.name.endswith(("_sum", "_count")):
                out.setdefault(s.labels["stage"], {})[s.name.rsplit("_", 1)[1]] = s.value
            elif family.name == "imgrec_stage_cpu_seconds" and s.name.endswith("_total"):
                out.setdefault(s.labels["stage"], {})["cpu"] = s.value
    return out


def gpu_utilisation(url: str) -> float | None:
    """Mean of Triton's nv_gpu_utilization over its GPUs (0..1), None on a host without one."""
    values = [
        s.value
        for family in text_string_to_metric_families(httpx.get(url, timeout=5).text)
        if family.name == "nv_gpu_utilization"
        for s in family.samples
    ]
    return sum(values) / len(values) if values else None


class TritonSampler:
    """Samples Triton's counters (and GPU utilisation, on a GPU host) every second in the background."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.gpu: list[float] = []
        self._stop = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._began, triton_counters(self.url)))
            gpu = gpu_utilisation(self.url)
            if gpu is not None:
                self.gpu.append(gpu)
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic() - self._began, triton_counters(self.url)))

    def busy_while_backlog(self) -> float:
        """Compute time over wall time from the first to the last sample in which Triton executed anything."""
        active = [
            i for i in range(1, len(self.samples))
            if self.samples[i][1]["nv_inference_exec_count"] > self.samples[i - 1][1]["nv_inference_exec_count"]
        ]  # fmt: skip
        if not active:
            return 0.0
        first, last = self.samples[active[0] - 1], self.samples[active[-1]]
        compute = last[1]["nv_inference_compute_infer_duration_us"] - first[1]["nv_inference_compute_infer_duration_us"]
        return round(compute / ((last[0] - first[0]) * 1e6), 3)


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


def run_pipeline(stack: Stack, client: ApiClient, images: list[bytes], chunk: int, timeout_s: float) -> dict:
    """Post the images through the API, wait for every batch; wall time, outcomes, Triton and stage figures."""
    settings = stack.settings
    stages_before = stage_seconds(settings.flink_metrics_url)
    before = triton_counters(settings.triton_metrics_url)
    cpu_before = stack_cpu_s(stack)
    sampler = TritonSampler(settings.triton_metrics_url)
    began = time.monotonic()
    batch_ids = [client.submit_batch(items)["batch_id"] for items in chunks(images, chunk)]
    posted = time.monotonic() - began
    ended = wait_ended(client, batch_ids, timeout_s)
    wall = time.monotonic() - began
    sampler.stop()
    cpu_after = stack_cpu_s(stack)
    after = triton_counters(settings.triton_metrics_url)
    stages_after = stage_seconds(settings.flink_metrics_url)
    store = SqlStore.from_url(settings.database_url)
    r, res = t.inference_requests, t.inference_results
    try:
        with store.engine.connect() as conn:
            hits, results = conn.execute(
                select(func.count().filter(res.c.cache_hit), func.count())
                .select_from(r.join(res, r.c.request_id == res.c.request_id))
                .where(r.c.batch_id.in_(batch_ids))
            ).one()
    finally:
        store.close()
    delta = {name: after[name] - before[name] for name in TRITON_COUNTERS}
    inferred = delta["nv_inference_count"]
    def per_image(field: str) -> dict[str, float]:
        return {
            name: round(1000 * (v.get(field, 0) - stages_before.get(name, {}).get(field, 0)) / max(1.0, inferred), 3)
            for name, v in stages_after.items()
        }

    cpu = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 2) for name in cpu_after}
    return {
        "wall_s": round(wall, 2),
        "post_s": round(posted, 2),
        "completed": sum(s["completed_count"] for s in ended.values()),
        "failed": sum(s["failed_count"] for s in ended.values()),
        "results": results,
        "cache_hits": hits,
        "unique_per_s": round(inferred / wall, 1),
        "triton": {
            "busy_fraction": round(delta["nv_inference_compute_infer_duration_us"] / (wall * 1e6), 3),
            "busy_while_backlog": sampler.busy_while_backlog(),
            "queue_fraction": round(delta["nv_inference_queue_duration_us"] / (wall * 1e6), 3),
            "requests": int(delta["nv_inference_request_success"]),
            "executions": int(delta["nv_inference_exec_count"]),
            "inferences": int(inferred),
            "mean_batch": round(inferred / max(1.0, delta["nv_inference_exec_count"]), 1),
            "gpu_utilisation": round(sum(sampler.gpu) / len(sampler.gpu), 3) if sampler.gpu else None,
        },
        "stage_ms_per_inferred_image": per_image("sum"),
        "stage_cpu_ms_per_inferred_image": per_image("cpu"),
        "stack_cpu_s": cpu,
        "stack_cpu_ms_per_unique": round(1000 * sum(cpu.values()) / max(1.0, inferred), 2),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of every figure the README quotes."""
    return {
        "stack_cpu_ms_per_unique": median_of(r["pipeline"]["stack_cpu_ms_per_unique"] for r in runs),
        "raw_cpu_ms_per_unique": median_of(r["raw_loop_unique"]["cpu_ms_per_image"] for r in runs),
        "cpu_ratio": median_of(r["cpu_ratio"] for r in runs),
        "unique_ratio": median_of(r["unique_ratio"] for r in runs),
        "unique_per_s": median_of(r["pipeline"]["unique_per_s"] for r in runs),
        "raw_unique_per_s": median_of(r["raw_loop_unique"]["images_per_s"] for r in runs),
        "all_items_ratio": median_of(r["all_items_ratio"] for r in runs),
        "wall_s": median_of(r["pipeline"]["wall_s"] for r in runs),
        "triton_busy_while_backlog": median_of(r["pipeline"]["triton"]["busy_while_backlog"] for r in runs),
        "triton_busy_wall": median_of(r["pipeline"]["triton"]["busy_fraction"] for r in runs),
        "mean_batch": median_of(r["pipeline"]["triton"]["mean_batch"] for r in runs),
        "memory_total_mb": median_of(r["memory"]["total_mb"] for r in runs),
        "failed": sum(r["pipeline"]["failed"] for r in runs),
    }


def start_stack(stack: Stack) -> float:
    """The services, the batch job RUNNING, then the API; seconds taken. No monitoring: the figures are the
    service's, without Prometheus and the exporters sharing its cores."""
    started = time.monotonic()
    stack.start(stack.services)
    stack.submit_job()
    while (status := job_status(stack.app_settings)) is None or status.state != "RUNNING":
        if time.monotonic() - started > 300:
            raise RuntimeError(f"the batch job is not running: {status}")
        time.sleep(0.5)
    stack.start(["api"])
    return time.monotonic() - started


def measure(stack: Stack, client: ApiClient, items: int, repeats: float, args: argparse.Namespace, run: int) -> dict:
    """One run of one workload: the raw loop over its unique images, then the pipeline over all of them."""
    images, distinct = workload(items, repeats, args.size, tag=f"r{run}-{time.time_ns()}")
    load = load_average()
    raw_s, raw_cpu_s = raw_loop(distinct, stack.app_settings)  # same run, same machine state, no stack traffic
    pipeline = run_pipeline(stack, client, images, args.chunk, args.timeout)
    raw_rate = len(distinct) / raw_s
    raw_cpu_ms = round(1000 * raw_cpu_s / len(distinct), 2)
    return {
        "load_avg_start": load,
        "items": len(images),
        "distinct_images": len(distinct),
        "pipeline": pipeline | {"images_per_s": round(len(images) / pipeline["wall_s"], 1)},
        "raw_loop_unique": {
            "wall_s": round(raw_s, 2), "images_per_s": round(raw_rate, 1), "cpu_ms_per_image": raw_cpu_ms,
        },
        "unique_ratio": round(pipeline["unique_per_s"] / raw_rate, 3),
        "all_items_ratio": round(len(images) / pipeline["wall_s"] / raw_rate, 3),
        "cpu_ratio": round(pipeline["stack_cpu_ms_per_unique"] / raw_cpu_ms, 2),
        "cache_hit_rate": round(pipeline["cache_hits"] / max(1, pipeline["results"]), 3),
        "memory": stack_memory(stack),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1_000, 10_000], help="Items of each workload.")
    parser.add_argument("--repeats", type=float, nargs="+", default=[0.0, 0.6],
                        help="Shares of items repeating an earlier image, one workload each.")
    parser.add_argument("--size", type=int, default=160, help="Longest side of the posted images (px).")
    parser.add_argument("--chunk", type=int, default=1_000, help="Items per POST /v1/recognize/batch.")
    parser.add_argument("--runs", type=int, default=3, help="Runs of each workload on the same stack (medians).")
    parser.add_argument("--timeout", type=float, default=900.0, help="Longest wait for the batches (s).")
    args = parser.parse_args(argv or [])

    load_before = load_average()
    workloads: list[dict[str, Any]] = []
    with private_stack() as stack:  # stops every component at the end
        startup_s = start_stack(stack)
        key = unlimited_key(stack.settings.database_url, "bench-batch")
        client = ApiClient(stack.settings.api_url, key, timeout_s=300)
        try:
            warm = next(chunks([b + b"warm-up" for b in base_photos(args.size)], 32))
            wait_ended(client, [client.submit_batch(warm)["batch_id"]], timeout_s=180)
            for items in args.items:
                for repeats in args.repeats:
                    runs: list[dict[str, Any]] = []
                    workloads.append({"items": items, "repeat_share": repeats, "runs": runs})
                    for run in range(args.runs):
                        runs.append(measure(stack, client, items, repeats, args, run))
                        print(f"{items} items, {repeats:.0%} repeats, run {run + 1}/{args.runs}: unique ratio "
                              f"{runs[-1]['unique_ratio']}, CPU ratio {runs[-1]['cpu_ratio']}", flush=True)
                        workloads[-1]["summary"] = summarise(runs)
                        # Written after every run, so a long run cut short still leaves its figures.
                        write_report("batch", {
                            "model": MODEL_ID,
                            "image_max_px": args.size,
                            "stack_startup_s": round(startup_s, 1),
                            "load_avg": {"start": load_before, "end": load_average()},
                            "settings": stack.app_settings.model_dump(
                                include={"micro_batch_size", "micro_batch_max_wait_ms", "micro_batch_shards",
                                         "preprocess_threads", "batch_route_memo_s"}
                            ),
                            "workloads": workloads,
                        })  # fmt: skip
        finally:
            client.close()

    for w in workloads:
        summary = w["summary"]
        print(f"\nmedians of {len(w['runs'])} runs ({w['items']} items, {w['repeat_share']:.0%} repeats)")
        print_table(["figure", "value", "goal"], [
            ["unique images/s (pipeline / raw loop)", f"{summary['unique_per_s']} / {summary['raw_unique_per_s']}", ""],
            ["unique-image ratio", summary["unique_ratio"], ">= 0.8"],
            ["CPU ms per unique image (stack / raw loop)",
             f"{summary['stack_cpu_ms_per_unique']} / {summary['raw_cpu_ms_per_unique']}", ""],
            ["CPU ratio", summary["cpu_ratio"], "<= 1.5"],
            ["all-items ratio", summary["all_items_ratio"], ""],
            ["Triton busy while backlog / over wall", f"{summary['triton_busy_while_backlog']} / "
             f"{summary['triton_busy_wall']}", ">= 0.85"],
            ["mean micro-batch", summary["mean_batch"], ">= 24 of 32"],
            ["stack memory MB (PSS)", summary["memory_total_mb"], "<= 6144"],
            ["failed items", summary["failed"], "0"],
        ])  # fmt: skip
        last = w["runs"][-1]["pipeline"]
        print("per-stage ms per inferred image, wall / CPU (last run, the job's Python workers)")
        cpu = last["stage_cpu_ms_per_inferred_image"]
        print_table(["stage", "wall ms", "CPU ms"], [
            [name, ms, cpu.get(name, "")] for name, ms in sorted(last["stage_ms_per_inferred_image"].items())
        ])
        print("stack CPU s by component (last run):", last["stack_cpu_s"])


if __name__ == "__main__":
    main(sys.argv[1:])
