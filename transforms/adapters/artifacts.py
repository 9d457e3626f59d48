"""Artifacts being registered: read from file://, s3:// or gs:// (fsspec), opened with ONNX Runtime for the checks,
and TorchScript converted to ONNX by a converter the caller supplies (the model build environment has torch; the
service's does not)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import fsspec
import numpy as np

from transforms.lifecycle.errors import LifecycleError
from transforms.lifecycle.ports import TensorSpec

Converter = Callable[[Path, Path, Sequence[int], str, Sequence[str]], None]


class OnnxArtifact:
    """An ONNX file opened in ONNX Runtime (CPU): its signature, and one run."""

    def __init__(self, path: Path) -> None:
        # Imported here, not with the module: every Flink operator imports the composition root, and loading
        # onnxruntime there first (with usearch loaded too) hung the TaskManager's embedded Python at job start.
        import onnxruntime as ort

        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise LifecycleError("artifact_unloadable", f"the artifact is not a loadable ONNX model: {exc}") from exc
        self.inputs = [TensorSpec(a.name, _dims(a.shape)) for a in self.session.get_inputs()]
        self.outputs = [TensorSpec(a.name, _dims(a.shape)) for a in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        return dict(zip(output_names, self.session.run(output_names, feeds), strict=True))


class ArtifactFiles:
    """The `ArtifactTools` port."""

    def __init__(self, converter: Converter | None = None) -> None:
        self.converter = converter

    def fetch(self, uri: str, dest: Path) -> None:
        if "://" not in uri:
            raise LifecycleError("bad_artifact_uri", f"give the artifact as a URI (file://, s3://, gs://), not {uri!r}")
        try:
            with fsspec.open(uri, "rb") as src, dest.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        except (OSError, ValueError, ImportError) as exc:
            raise LifecycleError("artifact_unreadable", f"cannot read {uri}: {exc}") from exc
        if dest.stat().st_size == 0:
            raise LifecycleError("artifact_unreadable", f"{uri} is empty")

    def open(self, path: Path) -> OnnxArtifact:
        return OnnxArtifact(path)

    def torchscript_to_onnx(
        self, source: Path, dest: Path, input_shape: Sequence[int], input_name: str, output_names: Sequence[str]
    ) -> None:
        if self.converter is None:
            raise LifecycleError(
                "no_converter",
                "TorchScript artifacts are converted by `imgrec models register`, "
                "which runs the export in the model build environment",
            )
        self.converter(source, dest, input_shape, input_name, output_names)


def _dims(shape: Sequence[object]) -> list[int | None]:
    return [d if isinstance(d, int) else None for d in shape]
