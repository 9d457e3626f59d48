"""TorchScript -> ONNX for `imgrec models register --framework torchscript`, run in the model build environment
(the cached venv with torch; the service's environment has none)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from runners.model_build.env import ModelBuildError, build_python
from transforms.lifecycle.errors import LifecycleError

EXPORT = Path(__file__).with_name("torchscript_export.py")


def torchscript_to_onnx(
    source: Path, dest: Path, input_shape: Sequence[int], input_name: str, output_names: Sequence[str]
) -> None:
    """Export the TorchScript module at `source` to ONNX at `dest` (batch axis dynamic); LifecycleError if it fails."""
    try:
        python = build_python()
    except ModelBuildError as exc:
        raise LifecycleError("no_converter", f"the model build environment is not available: {exc}") from exc
    spec = {"input_shape": list(input_shape), "input_name": input_name, "output_names": list(output_names)}
    proc = subprocess.run(
        [str(python), str(EXPORT), str(source), str(dest), json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LifecycleError("conversion_failed", f"the TorchScript artifact could not be exported to ONNX: {reason}")
