"""Generate the Triton model repository from the model registry (never edited by hand).

Layout: `<dest>/<model_id>/config.pbtxt` and `<dest>/<model_id>/<version>/model.onnx` (a symlink into the model
store), plus `model.py` for the Python backend.

- Default (this machine: the pytriton `tritonserver` has only the Python backend): `backend: "python"` running
  `runners/model_build/triton_model.py` (ONNX Runtime on CPU), `instance_group` KIND_CPU.
- `gpu=True` (a GPU host with Triton's onnxruntime backend): `backend: "onnxruntime"`, `instance_group` KIND_GPU,
  the same directories and files minus model.py. Triton reads the ONNX file itself; nothing else changes.

Both use `dynamic_batching` so concurrent requests are merged, and `max_batch_size` from
`Settings.micro_batch_size`. Input/output specs are read from each ONNX file (batch axis excluded).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import onnxruntime as ort

from transforms.handlers.base import ModelVersion
from transforms.model_registry import load_registry
from transforms.settings import Settings

PYTHON_MODEL = Path(__file__).parent / "model_build" / "triton_model.py"
TRITON_TYPES = {
    "tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32", "tensor(uint8)": "TYPE_UINT8", "tensor(bool)": "TYPE_BOOL",
}  # fmt: skip
# GPU: hold a request up to 2 ms to fill a preferred batch (a GPU runs a batch of 8 about as fast as one). CPU: no
# delay and no preferred sizes, Triton's default: a lone request runs at once, and requests that queue while the
# instance is busy are merged into its next run, up to max_batch_size (a CPU gains little from larger batches, and
# a c=1 caller would pay the whole delay every time).
GPU_QUEUE_DELAY_US = 2000


def io_specs(onnx_path: Path) -> tuple[list[str], list[str]]:
    """config.pbtxt entries for the model's inputs and outputs; symbolic dims become -1."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def entry(arg: ort.NodeArg) -> str:
        dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in arg.shape[1:])
        return f'  {{ name: "{arg.name}", data_type: {TRITON_TYPES[arg.type]}, dims: [ {dims} ] }}'

    return [entry(a) for a in session.get_inputs()], [entry(a) for a in session.get_outputs()]


def config_pbtxt(name: str, onnx_path: Path, max_batch: int, gpu: bool, threads: int, spinning: bool = False) -> str:
    inputs, outputs = io_specs(onnx_path)
    backend = "onnxruntime" if gpu else "python"
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    preferred = ", ".join(str(b) for b in (4, 8, 16, 32) if b <= max_batch)
    gpu_batching = f"preferred_batch_size: [ {preferred} ] max_queue_delay_microseconds: {GPU_QUEUE_DELAY_US}"
    batching = f"dynamic_batching {{ {gpu_batching} }}" if gpu else "dynamic_batching { }"
    lines = [
        f'name: "{name}"',
        f'backend: "{backend}"',
        f"max_batch_size: {max_batch}",
        "version_policy: { all: {} }",
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


def build_triton_repository(settings: Settings, dest: Path, gpu: bool = False) -> Path:
    """Write a fresh repository for every registry row into dest; the artifacts must be built already."""
    by_model: dict[str, list[ModelVersion]] = defaultdict(list)
    for row in load_registry():
        by_model[row.triton_name].append(row)
    shutil.rmtree(dest, ignore_errors=True)
    for name, rows in by_model.items():
        for row in rows:
            if not row.version.isdigit():
                raise ValueError(f"{name}: Triton versions are integers, registry has {row.version!r}")
            artifact = row.artifact_path(settings.resolved_model_store)
            if not artifact.exists():
                raise FileNotFoundError(f"{artifact} is missing; run `imgrec models build` first")
            version_dir = dest / name / row.version
            version_dir.mkdir(parents=True)
            (version_dir / "model.onnx").symlink_to(artifact.resolve())
            if not gpu:
                shutil.copy(PYTHON_MODEL, version_dir / "model.py")
        first = rows[0].artifact_path(settings.resolved_model_store)
        config = config_pbtxt(
            name, first, settings.micro_batch_size, gpu, settings.ort_threads, settings.ort_spinning
        )
        (dest / name / "config.pbtxt").write_text(config)
    return dest
