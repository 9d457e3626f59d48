"""Similarity search: latency and memory of the vector index at 10,000 and 100,000 vectors, and the embedding cost.

- Vectors: 1280-d like the `image-embedding` model's, drawn around 500 centres in the non-negative orthant (pooled
  ReLU features are non-negative and clustered) and L2-normalised; synthetic because embedding 100,000 real photos
  would take hours on two cores. Queries: 1,000 perturbed copies of indexed vectors.
- Index: the project's adapter (`transforms/adapters/usearch.py`, HNSW, cosine) at f16 (the default) and f32;
  search latency p50/p99 for k=10, one query at a time, against the raw baseline of an exact search (one float32
  matrix-vector product in numpy + argpartition) over the same vectors in the same run; recall@10 against that
  exact answer; the index's own memory (`memory_usage`), its serialised size (the blob) and the process's resident
  memory growth while building it; build rate.
- Embedding cost: decode + preprocess + in-process ONNX Runtime + normalise of a 512x512 JPEG, ms per image at
  batch 1 and 8 (median of 7 runs).

Prints tables and writes var/bench/similarity.json.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from typing import Any

import numpy as np
import psutil
from PIL import Image
from skimage import data

from benchmarks.common import load_average, percentiles, print_table, write_report
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.adapters.usearch import UsearchFactory
from transforms.handlers import get_handler
from transforms.inference import infer_images
from transforms.intake import decode_image
from transforms.model_registry import find
from transforms.settings import get_settings

DIMENSION = 1280
CENTRES = 500
QUERIES = 1000
K = 10
SIZES = (10_000, 100_000)
DTYPES = ("f16", "f32")
RUNS = 7


def vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors clustered like pooled image features (see the module docstring)."""
    centres = np.abs(rng.standard_normal((CENTRES, DIMENSION), dtype=np.float32)) ** 2
    picks = rng.integers(0, CENTRES, count)
    out = centres[picks] + np.abs(rng.standard_normal((count, DIMENSION), dtype=np.float32)) * 0.8
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def exact_top(matrix: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    sims = matrix @ query
    top = np.argpartition(-sims, k)[:k]
    return top[np.argsort(-sims[top])]


def bench_index(count: int, dtype: str, rng: np.random.Generator) -> dict[str, Any]:
    matrix = vectors(count, rng)
    picks = rng.integers(0, count, QUERIES)
    queries = matrix[picks] + rng.standard_normal((QUERIES, DIMENSION), dtype=np.float32) * 0.01
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    index = UsearchFactory(dtype).new(DIMENSION)
    began = time.perf_counter()
    for start in range(0, count, 1000):
        keys = np.arange(start, min(start + 1000, count), dtype=np.uint64)
        index.add(keys, matrix[start : start + 1000])
    build_s = time.perf_counter() - began
    rss_growth = process.memory_info().rss - rss_before
    ann, exact, hits = [], [], 0
    for query in queries:
        t0 = time.perf_counter()
        keys, _ = index.search(query, K)
        t1 = time.perf_counter()
        truth = exact_top(matrix, query, K)
        t2 = time.perf_counter()
        ann.append(t1 - t0)
        exact.append(t2 - t1)
        hits += len(set(keys.tolist()) & set(truth.tolist()))
    blob = index.to_bytes()
    ann_p, exact_p = percentiles(ann), percentiles(exact)
    return {
        "vectors": count,
        "dtype": dtype,
        "search": ann_p,
        "exact_numpy": exact_p,
        "p50_ratio_vs_exact": round(ann_p["p50_ms"] / exact_p["p50_ms"], 3),
        "recall_at_10": round(hits / (K * QUERIES), 4),
        "index_memory_mb": round(index.memory_bytes / 2**20, 1),
        "bytes_per_vector": round(index.memory_bytes / count),
        "blob_mb": round(len(blob) / 2**20, 1),
        "rss_growth_mb": round(rss_growth / 2**20, 1),
        "float32_matrix_mb": round(matrix.nbytes / 2**20, 1),
        "build_vectors_per_s": round(count / build_s),
    }


def embedding_cost() -> dict[str, float]:
    """ms per image through the embedding model in process, from JPEG bytes to a unit vector."""
    settings = get_settings()
    model = find("image-embedding")
    handler = get_handler(model, settings.resolved_model_store)
    backend = OnnxRuntimeBackend(settings.resolved_model_store, threads=settings.ort_threads)
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((512, 512)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    out = {}
    try:
        for batch in (1, 8):
            runs = []
            for _ in range(RUNS + 1):  # the first run warms the session up
                began = time.perf_counter()
                images = [decode_image(jpeg, max_pixels=settings.max_pixels) for _ in range(batch)]
                infer_images(model, handler, backend, images)
                runs.append((time.perf_counter() - began) / batch)
            out[f"b{batch}_ms_per_image"] = round(statistics.median(runs[1:]) * 1000, 2)
    finally:
        backend.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="Index sizes to measure.")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), help="Index scalar types (f32, f16, i8).")
    args = parser.parse_args(argv or [])
    load_at_start = load_average()
    rng = np.random.default_rng(0)
    rows = [bench_index(count, dtype, rng) for count in args.sizes for dtype in args.dtypes]
    cost = embedding_cost()
    print_table(
        ["vectors", "dtype", "search p50/p99 ms", "exact p50/p99 ms", "recall@10", "index MB", "B/vector", "blob MB",
         "RSS growth MB", "build vec/s"],
        [
            [r["vectors"], r["dtype"], f"{r['search']['p50_ms']} / {r['search']['p99_ms']}",
             f"{r['exact_numpy']['p50_ms']} / {r['exact_numpy']['p99_ms']}", r["recall_at_10"], r["index_memory_mb"],
             r["bytes_per_vector"], r["blob_mb"], r["rss_growth_mb"], r["build_vectors_per_s"]]
            for r in rows
        ],
    )  # fmt: skip
    print(f"embedding cost, ms/image (median of {RUNS}): {cost}")
    write_report(
        "similarity",
        {"load_average_at_start": load_at_start, "load_average_at_end": load_average(), "indexes": rows,
         "embedding": cost, "dimension": DIMENSION, "queries": QUERIES, "k": K},
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
