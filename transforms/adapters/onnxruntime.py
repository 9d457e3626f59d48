"""In-process ONNX Runtime: the embedded default back end. One session and one micro-batcher per model version.

Each session runs the version's served graph (`served_graph.py`: uint8 pixels in, normalised in the graph), as
Triton does.

GPU-ready: pass providers such as ["CUDAExecutionProvider", "CPUExecutionProvider"] (with onnxruntime-gpu
installed). On a GPU, feeding pinned host buffers through `session.io_binding()` avoids a staging copy per batch;
on CPU plain numpy inputs are already zero-copy.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from transforms.adapters.served_graph import served_graph
from transforms.backends.base import InferenceUnavailable
from transforms.backends.microbatch import MicroBatcher
from transforms.handlers import get_handler
from transforms.handlers.base import ModelVersion

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


class OnnxRuntimeBackend:
    """Runs registry models from the local model store."""

    def __init__(
        self,
        model_store: Path,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int = 0,
        max_batch: int = 32,
        max_wait_s: float = 0.0,
        spinning: bool = False,
    ) -> None:
        self._store = model_store
        self._providers = list(providers)
        self._threads = threads
        self._spinning = spinning
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._batchers: dict[tuple[str, str], MicroBatcher] = {}
        self._lock = threading.Lock()

    def session(self, model: ModelVersion) -> ort.InferenceSession:
        """A new session on a model version's served graph (raises InferenceUnavailable when the artifact is
        missing)."""
        path = model.artifact_path(self._store)
        if not path.exists():
            raise InferenceUnavailable(
                f"{model.model_id} v{model.version} is not built ({path}); run `imgrec models build`"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self._spinning else "0")
        graph = served_graph(path, get_handler(model, self._store))
        return ort.InferenceSession(graph, options, providers=self._providers)

    def batcher(self, model: ModelVersion) -> MicroBatcher:
        key = (model.model_id, model.version)
        with self._lock:
            if key not in self._batchers:
                session = self.session(model)

                def run(inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
                    return dict(zip(names, session.run(names, inputs), strict=True))

                name = f"ort-{model.model_id}-{model.version}"
                self._batchers[key] = MicroBatcher(run, self._max_batch, self._max_wait_s, name=name)
            return self._batchers[key]

    def infer(
        self, model: ModelVersion, inputs: dict[str, np.ndarray], output_names: list[str]
    ) -> dict[str, np.ndarray]:
        return self.batcher(model).submit(inputs, output_names)

    def unload(self, model_id: str, keep: set[str]) -> None:
        """Close the sessions of model_id's versions not in `keep` (their queued calls finish first)."""
        with self._lock:
            gone = [key for key in self._batchers if key[0] == model_id and key[1] not in keep]
            batchers = [self._batchers.pop(key) for key in gone]
        for b in batchers:
            b.close()

    def loaded(self, model_id: str) -> set[str]:
        """Versions of model_id with a session open in this process."""
        with self._lock:
            return {version for mid, version in self._batchers if mid == model_id}

    def ready(self) -> bool:
        return self._store.is_dir()

    def close(self) -> None:
        with self._lock:
            batchers, self._batchers = list(self._batchers.values()), {}
        for b in batchers:
            b.close()


class InProcessModelRepository:
    """The `ModelRepository` port of the embedded default: versions load into this process's ONNX Runtime.

    A version is loaded by opening its session (what a first request would do), so a broken artifact fails here
    and not on a caller; versions left out are closed once their queued calls are done.
    """

    def __init__(self, backend: OnnxRuntimeBackend) -> None:
        self.backend = backend

    def sync(self, model_id: str, versions: Sequence[ModelVersion]) -> dict[str, str]:
        for model in versions:
            self.backend.batcher(model)
        self.backend.unload(model_id, keep={m.version for m in versions})
        return self.readiness(model_id)

    def readiness(self, model_id: str) -> dict[str, str]:
        return dict.fromkeys(sorted(self.backend.loaded(model_id)), "READY")

    def close(self) -> None:
        self.backend.close()
