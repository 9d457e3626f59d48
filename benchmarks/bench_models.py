"""Per-model inference latency, ms/image at batch 1 and 8 (median of several runs), measured in one run:

- `onnxruntime`: a bare ONNX Runtime session (the raw baseline),
- `in-process`: the embedded back end (micro-batcher in front of the same kind of session),
- `triton`: the Triton back end over gRPC (IMGREC_TRITON_URL, else a private tritonserver started here).

Preprocessing is excluded from those: the same image goes to every path (the raw session gets the normalised
float tensor; the back ends get its uint8 pixels and normalise in their served graph, as the service does). It is
measured on its own, as the CPU cost of one image (decode of a JPEG photo + the handler's preprocess, one thread),
which the capacity model (`imgrec plan`) needs beside the inference cost. Prints a table and writes
var/bench/models.json.
"""

from __future__ import annotations

import argparse
import io
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

from benchmarks.common import load_average, write_report
from runners.stack.ports import free_ports
from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.adapters.triton import TritonBackend
from transforms.backends.base import InferenceBackend
from transforms.handlers import get_handler
from transforms.handlers.base import PIXELS_INPUT
from transforms.intake import decode_image
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


def preprocess_ms(model_id: str) -> float:
    """CPU ms per image for decode + preprocess of the astronaut photo as a JPEG (median of RUNS)."""
    settings = get_settings()
    handler = get_handler(find(model_id), settings.resolved_model_store)
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()
    return median_ms_per_image(lambda: handler.preprocess(decode_image(jpeg, max_pixels=settings.max_pixels)), 1)


def bench_model(
    model_id: str, backends: dict[str, InferenceBackend], batches: tuple[int, ...] = BATCHES
) -> dict[str, float]:
    model = find(model_id)
    settings = get_settings()
    handler = get_handler(model, settings.resolved_model_store)
    image = Image.fromarray(data.astronaut())
    tensor, _ = handler.preprocess(image)  # the artifact's float input, for the raw session
    pixels, _ = handler.pixels(image)  # what a back end takes: its served graph normalises
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_threads
    session = ort.InferenceSession(str(model.artifact_path(settings.resolved_model_store)), options)
    row = {}
    for batch in batches:
        feed = {handler.input_name: np.stack([tensor] * batch)}
        row[f"onnxruntime b{batch}"] = median_ms_per_image(lambda f=feed: session.run(handler.output_names, f), batch)
        served_feed = {PIXELS_INPUT: np.stack([pixels] * batch)}
        for name, backend in backends.items():
            run = lambda f=served_feed, b=backend: b.infer(model, f, handler.output_names)  # noqa: E731
            row[f"{name} b{batch}"] = median_ms_per_image(run, batch)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES), help="Batch sizes to measure.")
    args = parser.parse_args(argv or [])
    settings = get_settings()
    load_at_start = load_average()
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
    preprocess = {model_id: preprocess_ms(model_id) for model_id in MODELS}
    columns = list(next(iter(results.values())))
    print(f"{'ms/image (median of ' + str(RUNS) + ')':24}" + "".join(f"{c:>18}" for c in [*columns, "preprocess"]))
    for model_id, row in results.items():
        print(f"{model_id:24}" + "".join(f"{v:18.2f}" for v in [*(row[c] for c in columns), preprocess[model_id]]))
    load = {"start": load_at_start, "end": load_average()}
    report = {"runs": RUNS, "load_avg": load, "ms_per_image": results, "preprocess_ms_per_image": preprocess}
    write_report("models", report)


if __name__ == "__main__":
    main(sys.argv[1:])
