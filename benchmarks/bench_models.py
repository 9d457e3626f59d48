"""Per-model inference latency, ms/image at batch 1 and 8 (median of several runs), measured in one run:

- `onnxruntime`: a bare ONNX Runtime session (the raw baseline),
- `in-process`: the embedded back end (micro-batcher in front of the same kind of session),
- `triton`: the Triton back end over gRPC (IMGREC_TRITON_URL, else a private tritonserver started here).

Preprocessing is excluded: the same tensor goes to every path. Prints a table and writes var/bench/models.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from skimage import data

from runners.stack.ports import free_ports
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.adapters.triton import TritonBackend
from transforms.backends.base import InferenceBackend
from transforms.handlers import get_handler
from transforms.model_registry import find
from transforms.settings import get_settings

MODELS = ("object-detection", "scene-classification", "face-detection", "nsfw-classification")
BATCHES = (1, 8)  # `--batches 1 8 32` on a GPU host (the GPU figures)
RUNS = 7


def median_ms_per_image(fn: Callable[[], object], batch: int) -> float:
    fn()  # warm-up: session initialisation and allocator growth are not latency
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000 / batch


@contextmanager
def triton_url() -> Iterator[str]:
    """The configured Triton, else a private one on free ports serving the generated repository."""
    settings = get_settings()
    if settings.triton_url:
        yield settings.triton_url
        return
    from runners.stack.settings import StackSettings
    from runners.stack.stack import Stack

    with tempfile.TemporaryDirectory(prefix="imgrec-bench-") as root:
        http, grpc_port, metrics = free_ports(3)
        stack_settings = StackSettings(
            root=Path(root), triton_http_port=http, triton_grpc_port=grpc_port, triton_metrics_port=metrics
        )
        stack = Stack(stack_settings, settings.model_copy(update={"model_store": settings.resolved_model_store}))
        stack.start(["triton"])
        try:
            yield stack_settings.triton_url
        finally:
            stack.stop(["triton"])


def bench_model(
    model_id: str, backends: dict[str, InferenceBackend], batches: tuple[int, ...] = BATCHES
) -> dict[str, float]:
    model = find(model_id)
    settings = get_settings()
    handler = get_handler(model, settings.resolved_model_store)
    image = Image.fromarray(data.astronaut())
    tensor, _ = handler.preprocess(image)
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_threads
    session = ort.InferenceSession(str(model.artifact_path(settings.resolved_model_store)), options)
    row = {}
    for batch in batches:
        feed = {handler.input_name: np.stack([tensor] * batch)}
        row[f"onnxruntime b{batch}"] = median_ms_per_image(lambda f=feed: session.run(handler.output_names, f), batch)
        for name, backend in backends.items():
            run = lambda f=feed, b=backend: b.infer(model, f, handler.output_names)  # noqa: E731
            row[f"{name} b{batch}"] = median_ms_per_image(run, batch)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES), help="Batch sizes to measure.")
    args = parser.parse_args(argv or [])
    settings = get_settings()
    with triton_url() as url:
        backends: dict[str, InferenceBackend] = {
            "in-process": OnnxRuntimeBackend(settings.resolved_model_store, threads=settings.ort_threads),
            "triton": TritonBackend(url, timeout_s=120),
        }
        try:
            results = {model_id: bench_model(model_id, backends, tuple(args.batches)) for model_id in MODELS}
        finally:
            for backend in backends.values():
                backend.close()
    columns = list(next(iter(results.values())))
    print(f"{'ms/image (median of ' + str(RUNS) + ')':24}" + "".join(f"{c:>18}" for c in columns))
    for model_id, row in results.items():
        print(f"{model_id:24}" + "".join(f"{row[c]:18.2f}" for c in columns))
    out = settings.var_dir / "bench" / "models.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": RUNS, "ms_per_image": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
