"""The in-process ONNX Runtime back end without a model file, its micro-batcher, and the back-end factory."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.adapters.triton import TritonBackend
from transforms.backends.base import InferenceUnavailable
from transforms.backends.microbatch import MicroBatcher
from transforms.composition import make_backend
from transforms.handlers.base import PIXELS_INPUT
from transforms.model_registry import find
from transforms.settings import Settings


def colour(rgb: tuple[int, int, int], rows: int = 1) -> np.ndarray:
    """uint8 pixels of one colour for the tiny model's served graph (which scales them to 0-1)."""
    return np.broadcast_to(np.asarray(rgb, np.uint8), (rows, 8, 8, 3)).copy()


def test_missing_artifact_is_unavailable(tmp_path: Path) -> None:
    backend = OnnxRuntimeBackend(tmp_path)
    with pytest.raises(InferenceUnavailable, match="imgrec models build"):
        backend.infer(find("tiny-rgb"), {PIXELS_INPUT: colour((255, 0, 0))}, ["logits"])


def test_concurrent_calls_share_one_run() -> None:
    release, calls = threading.Event(), []

    def run(inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        calls.append(len(inputs["x"]))
        release.wait(5)  # the first run blocks until the others have queued up
        return {"y": inputs["x"] * 2}

    batcher = MicroBatcher(run, max_batch=8)
    with ThreadPoolExecutor(5) as pool:
        submit = partial(pool.submit, batcher.submit)
        futures = [submit({"x": np.full((1, 2), 0, np.float32)}, ["y"])]
        while not calls:  # the first run has started (and blocks): the next calls can only queue behind it
            threading.Event().wait(0.01)
        futures += [submit({"x": np.full((1, 2), i, np.float32)}, ["y"]) for i in range(1, 5)]
        while batcher._queue.qsize() < 4:
            threading.Event().wait(0.01)
        release.set()
        results = [f.result(5)["y"] for f in futures]
    batcher.close()
    assert calls == [1, 4] and batcher.runs == 2
    assert [r.tolist() for r in results] == [[[2 * i, 2 * i]] for i in range(5)]


def test_run_failure_reaches_every_caller_and_worker_survives() -> None:
    def run(inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        if inputs["x"][0, 0] < 0:
            raise ValueError("bad input")
        return {"y": inputs["x"]}

    batcher = MicroBatcher(run, max_batch=4)
    with pytest.raises(ValueError, match="bad input"):
        batcher.submit({"x": -np.ones((1, 1), np.float32)}, ["y"])
    assert batcher.submit({"x": np.ones((1, 1), np.float32)}, ["y"])["y"].tolist() == [[1.0]]
    batcher.close()


def test_mismatched_shapes_run_separately() -> None:
    sizes = []

    def run(inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        sizes.append(inputs["x"].shape)
        return {"y": inputs["x"].sum(axis=1)}

    batcher = MicroBatcher(run, max_batch=4)
    with ThreadPoolExecutor(4) as pool:
        a = pool.submit(batcher.submit, {"x": np.ones((1, 2), np.float32)}, ["y"])
        b = pool.submit(batcher.submit, {"x": np.ones((1, 3), np.float32)}, ["y"])
        assert a.result(5)["y"].tolist() == [2.0] and b.result(5)["y"].tolist() == [3.0]
    batcher.close()
    assert sorted(sizes) == [(1, 2), (1, 3)]


def test_factory_picks_triton_only_when_configured() -> None:
    base = Settings()
    embedded = make_backend(base.model_copy(update={"triton_url": None}))
    remote = make_backend(base.model_copy(update={"triton_url": "127.0.0.1:1"}))
    assert isinstance(embedded, OnnxRuntimeBackend) and isinstance(remote, TritonBackend)
    embedded.close()
    remote.close()


def test_unknown_artifact_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match="cannot open artifact"):
        replace(find("tiny-rgb"), artifact_uri="s3://bucket/model.onnx").artifact_path(Path("/tmp"))
