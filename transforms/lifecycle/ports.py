"""The ports the lifecycle runs on; adapters in `transforms/adapters/`, wired in `transforms/composition.py`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from transforms.handlers.base import ModelVersion
from transforms.lifecycle.gates import GateRules
from transforms.lifecycle.records import (
    EvaluationRecord,
    ModelEvent,
    PopularImage,
    Registration,
    RouteChange,
    VersionRecord,
)


class LifecycleStore(Protocol):
    """The registry's lifecycle tables (`model_registry`, `model_evaluations`, `model_events`, `model_gates`)."""

    def versions(self, model_id: str | None = None) -> list[VersionRecord]: ...

    def add_version(self, model: ModelVersion, registration: Registration, event: ModelEvent) -> None:
        """Insert an inactive version and its `register` event in one transaction; ValueError if it exists."""
        ...

    def apply(self, change: RouteChange) -> int:
        """Write a route, the stored states and the audit row in one transaction; returns the event id."""
        ...

    def set_state(self, event: ModelEvent, state: Any = None, loaded: bool | None = None) -> int:
        """Change one version's stored state and/or loaded flag with its audit row; returns the event id."""
        ...

    def save_evaluation(self, evaluation: EvaluationRecord, event: ModelEvent) -> int:
        """Store an evaluation (and move the version to `evaluated`) with its audit row; returns its id."""
        ...

    def latest_evaluation(self, model_id: str, version: str) -> EvaluationRecord | None: ...

    def events(self, model_id: str, limit: int = 50) -> list[ModelEvent]:
        """The newest audit rows of a model, newest first."""
        ...

    def gate_rules(self, model_id: str) -> GateRules: ...

    def set_gate_rules(self, model_id: str, rules: GateRules, event: ModelEvent) -> None: ...

    def popular_images(self, model_id: str, window: timedelta, limit: int, exclude_caller: str) -> list[PopularImage]:
        """The most requested images of a model over the window (by request rows), most requested first."""
        ...


class ModelRepository(Protocol):
    """What the serving back end has loaded: Triton's repository API, or this process's ONNX Runtime."""

    def sync(self, model_id: str, versions: Sequence[ModelVersion]) -> dict[str, str]:
        """Make exactly these versions loaded (blocking until they are ready); each known version's state."""
        ...

    def readiness(self, model_id: str) -> dict[str, str]:
        """The back end's state of each version it knows (READY when it serves)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: list[int | None]  # None: a symbolic dimension (the batch axis, a dynamic size)


class LoadedArtifact(Protocol):
    """An ONNX artifact opened for a check: its signature, and one run."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]: ...


class ArtifactTools(Protocol):
    """Reading artifacts from where they were uploaded, opening them, converting TorchScript."""

    def fetch(self, uri: str, dest: Path) -> None:
        """Copy the artifact at a file://, s3:// or gs:// URI to a local file; RegistrationError if unreadable."""
        ...

    def open(self, path: Path) -> LoadedArtifact:
        """Load an ONNX file; RegistrationError when it does not load."""
        ...

    def torchscript_to_onnx(
        self, source: Path, dest: Path, input_shape: Sequence[int], input_name: str, output_names: Sequence[str]
    ) -> None:
        """Export a TorchScript module to ONNX (dynamic batch axis); RegistrationError on failure."""
        ...
