"""The Triton model repository, generated from registry rows (never edited by hand) and kept live.

Layout: `<dest>/<model_id>/config.pbtxt` and `<dest>/<model_id>/<version>/model.onnx` (the artifact's served graph:
uint8 pixels in, the handler's normalisation in front of the model; `served_graph.py`), plus `model.py` for the
Python backend. `config.pbtxt` names the loaded versions (`version_policy: specific`),
so the files on disk always say what Triton serves, across restarts.

- Default (this machine: the pytriton `tritonserver` has only the Python backend): `backend: "python"` running
  `triton_python_model.py` beside this file (ONNX Runtime on CPU), `instance_group` KIND_CPU.
- `gpu=True` (a GPU host with Triton's onnxruntime backend): `backend: "onnxruntime"`, `instance_group` KIND_GPU,
  the same directories and files minus model.py. Triton reads the ONNX file itself; nothing else changes.

Both use `dynamic_batching` so concurrent requests are merged, and `max_batch_size` from
`Settings.micro_batch_size`. Input/output specs are read from each served file (batch axis excluded).

`TritonModelRepository` is the live side (Triton runs with `--model-control-mode=explicit`): it rewrites one
model's directory and asks Triton to load it through the repository API (gRPC `RepositoryModelLoad`). Triton
loads added versions beside the ones serving and unloads removed ones once their requests are done, so a change
neither restarts the server nor fails a request to a version that stays.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc
import onnxruntime as ort

from transforms.adapters.served_graph import served_graph
from transforms.adapters.triton_protocol import SERVICE, pb
from transforms.backends.base import InferenceUnavailable
from transforms.handlers import get_handler
from transforms.handlers.base import ModelVersion
from transforms.settings import Settings

PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")
TRITON_TYPES = {
    "tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32", "tensor(uint8)": "TYPE_UINT8", "tensor(bool)": "TYPE_BOOL",
}  # fmt: skip
# GPU: hold a request up to 2 ms to fill a preferred batch (a GPU runs a batch of 8 about as fast as one). CPU: no
# delay and no preferred sizes, Triton's default: a lone request runs at once, and requests that queue while the
# instance is busy are merged into its next run, up to max_batch_size (a CPU gains little from larger batches, and
# a c=1 caller would pay the whole delay every time).
GPU_QUEUE_DELAY_US = 2000
READY = "READY"


def io_specs(onnx_path: Path) -> tuple[list[str], list[str]]:
    """config.pbtxt entries for the model's inputs and outputs; symbolic dims become -1."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def entry(arg: ort.NodeArg) -> str:
        dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in arg.shape[1:])
        return f'  {{ name: "{arg.name}", data_type: {TRITON_TYPES[arg.type]}, dims: [ {dims} ] }}'

    return [entry(a) for a in session.get_inputs()], [entry(a) for a in session.get_outputs()]


def config_pbtxt(
    name: str,
    onnx_path: Path,
    max_batch: int,
    gpu: bool,
    threads: int,
    spinning: bool = False,
    versions: Sequence[str] = (),
) -> str:
    """One model's config; `versions` are the ones Triton loads (all of those on disk when empty)."""
    inputs, outputs = io_specs(onnx_path)
    backend = "onnxruntime" if gpu else "python"
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    preferred = ", ".join(str(b) for b in (4, 8, 16, 32) if b <= max_batch)
    gpu_batching = f"preferred_batch_size: [ {preferred} ] max_queue_delay_microseconds: {GPU_QUEUE_DELAY_US}"
    batching = f"dynamic_batching {{ {gpu_batching} }}" if gpu else "dynamic_batching { }"
    policy = f"specific: {{ versions: [ {', '.join(sorted(versions, key=int))} ] }}" if versions else "all: {}"
    lines = [
        f'name: "{name}"',
        f'backend: "{backend}"',
        f"max_batch_size: {max_batch}",
        f"version_policy: {{ {policy} }}",
        "input [\n" + ",\n".join(inputs) + "\n]",
        "output [\n" + ",\n".join(outputs) + "\n]",
        batching,
        f"instance_group [ {{ kind: {kind}, count: 1 }} ]",
    ]
    if not gpu:
        lines.append(f'parameters: {{ key: "intra_op_threads", value: {{ string_value: "{threads}" }} }}')
        # Idle ONNX Runtime threads spin by default, taking CPU from the API and Flink on a shared host.
        lines.append(f'parameters: {{ key: "allow_spinning", value: {{ string_value: "{int(spinning)}" }} }}')
    return "\n".join(lines) + "\n"


def write_model(settings: Settings, dest: Path, rows: Sequence[ModelVersion], gpu: bool = False) -> Path:
    """Write one model's directory for exactly these versions (others on disk are left, but not loaded)."""
    name, store = rows[0].triton_name, settings.resolved_model_store
    for row in rows:
        if not row.version.isdigit():
            raise ValueError(f"{name}: Triton versions are integers, registry has {row.version!r}")
        artifact = row.artifact_path(store)
        if not artifact.exists():
            raise FileNotFoundError(f"{artifact} is missing; run `imgrec models build` first")
        version_dir = dest / name / row.version
        version_dir.mkdir(parents=True, exist_ok=True)
        served = version_dir / "model.onnx"
        partial = version_dir / "model.onnx.partial"
        partial.write_bytes(served_graph(artifact, get_handler(row, store)))
        partial.replace(served)
        if not gpu:
            shutil.copy(PYTHON_MODEL, version_dir / "model.py")
    config = config_pbtxt(
        name,
        dest / name / rows[-1].version / "model.onnx",
        settings.micro_batch_size,
        gpu,
        settings.ort_threads,
        settings.ort_spinning,
        [row.version for row in rows],
    )
    partial = dest / name / "config.pbtxt.partial"
    partial.write_text(config)
    partial.replace(dest / name / "config.pbtxt")  # Triton never reads half a config or model
    return dest / name


def build_triton_repository(settings: Settings, dest: Path, rows: Iterable[ModelVersion], gpu: bool = False) -> Path:
    """Write a fresh repository for these registry rows into dest; the artifacts must be built already."""
    by_model: dict[str, list[ModelVersion]] = defaultdict(list)
    for row in rows:
        by_model[row.triton_name].append(row)
    shutil.rmtree(dest, ignore_errors=True)
    for model_rows in by_model.values():
        write_model(settings, dest, model_rows, gpu)
    return dest


class TritonModelRepository:
    """The `ModelRepository` port on a Triton server in explicit model-control mode."""

    def __init__(self, settings: Settings, url: str, repository: Path, timeout_s: float = 300.0) -> None:
        self.settings = settings
        self.url = url
        self.repository = repository
        self._timeout_s = timeout_s
        self._channel = grpc.insecure_channel(url)
        self._load = self._call("RepositoryModelLoad", pb.RepositoryModelLoadRequest, pb.RepositoryModelLoadResponse)
        self._unload = self._call(
            "RepositoryModelUnload", pb.RepositoryModelUnloadRequest, pb.RepositoryModelUnloadResponse
        )
        self._index = self._call("RepositoryIndex", pb.RepositoryIndexRequest, pb.RepositoryIndexResponse)

    def _call(self, method: str, request: type, response: type) -> grpc.UnaryUnaryMultiCallable:
        return self._channel.unary_unary(
            SERVICE + method, request_serializer=request.SerializeToString, response_deserializer=response.FromString
        )

    def sync(self, model_id: str, versions: Sequence[ModelVersion]) -> dict[str, str]:
        """Make `versions` the loaded versions of model_id (none: unload it); returns each version's state.

        Blocks until Triton has loaded them; raises InferenceUnavailable naming the version Triton could not load.
        """
        try:
            if not versions:
                self._unload(pb.RepositoryModelUnloadRequest(model_name=model_id), timeout=self._timeout_s)
                return {}
            write_model(self.settings, self.repository, list(versions))
            self._load(pb.RepositoryModelLoadRequest(model_name=model_id), timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise InferenceUnavailable(f"Triton {self.url} could not load {model_id}: {exc.details()}") from exc  # type: ignore[attr-defined]
        states = self._await_settled(model_id, {v.version for v in versions})
        failed = {v: s for v, s in states.items() if v in {m.version for m in versions} and s != READY}
        if failed:
            raise InferenceUnavailable(f"Triton {self.url}: {model_id} versions not ready after loading: {failed}")
        return states

    def _await_settled(self, model_id: str, wanted: set[str]) -> dict[str, str]:
        """Versions that Triton is still unloading are left to finish their requests; wait for the wanted ones."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            states = self.readiness(model_id)
            if all(states.get(v) == READY for v in wanted) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def readiness(self, model_id: str) -> dict[str, str]:
        """Triton's state of each version of model_id it knows (READY, LOADING, UNLOADING, UNAVAILABLE)."""
        try:
            index = self._index(pb.RepositoryIndexRequest(), timeout=10)
        except grpc.RpcError as exc:
            raise InferenceUnavailable(f"Triton {self.url} is not answering: {exc.details()}") from exc  # type: ignore[attr-defined]
        return {m.version: m.state for m in index.models if m.name == model_id and m.version}

    def close(self) -> None:
        self._channel.close()
