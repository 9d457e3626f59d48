"""Registering a version: the artifact is fetched, converted when it is TorchScript, and checked (it loads, its
shapes fit the handler, it runs on a sample image) before anything is kept; only then is it placed in the
artifact store, loaded by the serving back end and written to the registry, inactive. A refused artifact leaves
no file, no row and no loaded version behind.
"""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from transforms.handlers.base import ModelHandler, ModelVersion
from transforms.intake import decode_image, sha256_file
from transforms.lifecycle.errors import LifecycleError
from transforms.lifecycle.evalset import MAX_PIXELS, eval_set_for
from transforms.lifecycle.ports import ArtifactTools, LifecycleStore, LoadedArtifact, ModelRepository
from transforms.lifecycle.records import ModelEvent, Registration, VersionRecord

FRAMEWORKS = ("onnx", "torchscript")
SOURCE_NAMES = {"onnx": "model.onnx", "torchscript": "model.pt"}


@dataclass(frozen=True)
class RegisterRequest:
    """`imgrec models register` as data."""

    model_id: str
    version: str
    artifact_uri: str
    handler: str
    actor: str
    framework: str = "onnx"
    threshold: float | None = None
    min_label_count: int | None = None
    labels_uri: str | None = None  # default: the labels of the model's active version
    extra: dict[str, Any] = field(default_factory=dict)  # merged over the active version's handler parameters


class Registrar:
    """Checks and registers new versions into `artifact_root/<model_id>/<version>/`."""

    def __init__(
        self,
        store: LifecycleStore,
        tools: ArtifactTools,
        repository: ModelRepository,
        artifact_root: Path,
        model_store: Path,
        handler_for: Callable[[ModelVersion], ModelHandler],
        known_handlers: set[str],
    ) -> None:
        self.store = store
        self.tools = tools
        self.repository = repository
        self.artifact_root = artifact_root
        self.model_store = model_store
        self.handler_for = handler_for
        self.known_handlers = known_handlers

    def register(self, req: RegisterRequest) -> VersionRecord:
        """Register one version; LifecycleError (with nothing left behind) when anything is wrong."""
        existing = self.store.versions(req.model_id)
        self._validate(req, existing)
        template = next((r.model for r in existing if r.model.is_active), existing[0].model if existing else None)
        final = self.artifact_root / req.model_id / req.version
        staging = self.artifact_root / req.model_id / f".{req.version}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            row = self._stage(req, template, staging)
            if final.exists():
                shutil.rmtree(final)  # a leftover of an earlier refused registration (no row names it)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        row = replace(row, artifact_uri=(final / "model.onnx").as_uri())
        loaded = [r.model for r in existing if r.loaded]
        event = ModelEvent(
            req.model_id,
            "register",
            req.actor,
            version=req.version,
            details={"source_uri": req.artifact_uri, "framework": req.framework},
        )
        registration = Registration(req.artifact_uri, sha256_file(final / "model.onnx"), req.actor)
        try:
            self.repository.sync(req.model_id, [*loaded, row])
            self.store.add_version(row, registration, event)
        except BaseException:
            self._undo(req.model_id, loaded, final)
            raise
        return next(r for r in self.store.versions(req.model_id) if r.version == req.version)

    def _undo(self, model_id: str, loaded: list[ModelVersion], final: Path) -> None:
        try:
            self.repository.sync(model_id, loaded)
        finally:
            shutil.rmtree(final, ignore_errors=True)

    def _validate(self, req: RegisterRequest, existing: list[VersionRecord]) -> None:
        if not req.version.isdigit() or int(req.version) < 1:
            raise LifecycleError(
                "bad_version", f"version must be a positive integer (Triton numbers its versions), not {req.version!r}"
            )
        if any(r.version == req.version for r in existing):
            raise LifecycleError("version_exists", f"{req.model_id} already has a version {req.version}")
        if req.handler not in self.known_handlers:
            raise LifecycleError(
                "unknown_handler", f"unknown handler {req.handler!r}; known: {sorted(self.known_handlers)}"
            )
        if req.framework not in FRAMEWORKS:
            raise LifecycleError("bad_framework", f"framework must be one of {FRAMEWORKS}, not {req.framework!r}")
        if not existing and (req.labels_uri is None or not req.extra):
            raise LifecycleError(
                "new_model_needs_labels",
                f"{req.model_id} has no version yet: give --labels and --extra (the handler's parameters)",
            )
        if req.threshold is not None and not 0 <= req.threshold <= 1:
            raise LifecycleError("bad_threshold", f"--threshold must be in [0, 1], not {req.threshold}")

    def _stage(self, req: RegisterRequest, template: ModelVersion | None, staging: Path) -> ModelVersion:
        """Fetch (and convert) into staging, then check; returns the row, pointing at the staged ONNX file."""
        source = staging / SOURCE_NAMES[req.framework]
        self.tools.fetch(req.artifact_uri, source)
        extra = {**(template.extra if template else {}), **req.extra}
        row = ModelVersion(
            model_id=req.model_id,
            version=req.version,
            handler=req.handler,
            artifact_uri=(staging / "model.onnx").as_uri(),
            framework=req.framework,
            input_shape=list(template.input_shape) if template else [],
            default_confidence_threshold=req.threshold
            if req.threshold is not None
            else (template.default_confidence_threshold if template else 0.5),
            min_label_count=req.min_label_count
            if req.min_label_count is not None
            else (template.min_label_count if template else 1),
            is_active=False,
            extra=extra,
        )
        if req.labels_uri is not None:
            self.tools.fetch(req.labels_uri, staging / "labels.json")
        elif template is not None:
            shutil.copy(template.artifact_path(self.model_store).with_name("labels.json"), staging / "labels.json")
        handler = self.handler_for(row)
        if req.framework == "torchscript":
            shape = row.input_shape or [3, 224, 224]
            self.tools.torchscript_to_onnx(
                source, staging / "model.onnx", shape, handler.input_name, handler.output_names
            )
        artifact = self.tools.open(staging / "model.onnx")
        row = replace(row, input_shape=row.input_shape or _input_shape(artifact, handler))
        check_signature(row, handler, artifact)
        self._run_sample(row, handler, artifact)
        return row

    def _run_sample(self, row: ModelVersion, handler: ModelHandler, artifact: LoadedArtifact) -> None:
        tensor, meta = handler.preprocess(sample_image(row))
        try:
            outputs = artifact.run({handler.input_name: tensor[None].astype(np.float32)}, handler.output_names)
            labels = handler.postprocess({k: v[0] for k, v in outputs.items()}, meta)
        except Exception as exc:
            raise LifecycleError(
                "sample_failed", f"the artifact does not run on a sample image with handler {row.handler!r}: {exc}"
            ) from exc
        if any(not np.isfinite(label.score) for label in labels):
            raise LifecycleError("sample_failed", "the artifact answers a sample image with non-finite scores")
        if row.min_label_count > 0 and not labels:
            raise LifecycleError("sample_failed", "the artifact gives no label for a sample image")


def check_signature(row: ModelVersion, handler: ModelHandler, artifact: LoadedArtifact) -> None:
    """The artifact's input is the handler's (name and shape) and it has every output the handler reads."""
    inputs = {spec.name: spec.shape for spec in artifact.inputs}
    if handler.input_name not in inputs:
        raise LifecycleError(
            "wrong_input",
            f"the artifact has no input {handler.input_name!r} (it has "
            f"{sorted(inputs)}); handler {row.handler!r} feeds that name",
        )
    shape = inputs[handler.input_name][1:]
    fits = len(shape) == len(row.input_shape) and all(
        d is None or d == w for d, w in zip(shape, row.input_shape, strict=True)
    )
    if not fits:
        raise LifecycleError(
            "wrong_input_shape",
            f"the artifact's input {handler.input_name!r} is "
            f"{_dims(shape)} per image; handler {row.handler!r} for "
            f"{row.model_id} feeds {_dims(row.input_shape)}",
        )
    outputs = {spec.name for spec in artifact.outputs}
    missing = [name for name in handler.output_names if name not in outputs]
    if missing:
        raise LifecycleError(
            "wrong_outputs",
            f"the artifact lacks the outputs {missing} that handler {row.handler!r} reads (it has {sorted(outputs)})",
        )


def sample_image(row: ModelVersion) -> Image.Image:
    """The first photo of the model's evaluation set, or a colour gradient when it names none."""
    try:
        return eval_set_for(row).items[0].image.decode()
    except FileNotFoundError:
        ramp = np.linspace(0, 255, 256, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(
            np.stack(
                [np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)), np.full((256, 256), 128, np.uint8)], axis=-1
            )
        ).save(buf, "PNG")
        return decode_image(buf.getvalue(), max_pixels=MAX_PIXELS)


def _input_shape(artifact: LoadedArtifact, handler: ModelHandler) -> list[int]:
    spec = next((s for s in artifact.inputs if s.name == handler.input_name), None)
    if spec is None or any(d is None for d in spec.shape[1:]):
        raise LifecycleError("wrong_input", "a new model needs an artifact with a fixed input shape")
    return [int(d) for d in spec.shape[1:] if d is not None]


def _dims(shape: list[int | None] | list[int]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


