"""The committed model registry (`models/registry.json`): one row per model version, read as `ModelVersion`s.

The database's `model_registry` table is seeded from `load_registry()`. Artifact URIs are `model-store://...`
(relative to `Settings.resolved_model_store`, filled by `imgrec models build`) or absolute `file://` URIs.
"""

from __future__ import annotations

import json
from pathlib import Path

from transforms.handlers.base import ModelVersion
from transforms.settings import REPO_ROOT, Settings, get_settings

REGISTRY_FILE = REPO_ROOT / "models" / "registry.json"


def load_registry(path: Path = REGISTRY_FILE) -> list[ModelVersion]:
    """All registry rows, in file order."""
    rows = json.loads(path.read_text())
    return [ModelVersion(**{**row, "input_shape": list(row["input_shape"])}) for row in rows]


def lock_key(model: ModelVersion) -> str:
    """The row's key in models/models.lock.json and its directory in the model store."""
    return f"{model.model_id}/{model.version}"


def artifact_path(model: ModelVersion, settings: Settings | None = None) -> Path:
    """Local path of a row's ONNX file."""
    return model.artifact_path((settings or get_settings()).resolved_model_store)


def find(model_id: str, version: str | None = None, rows: list[ModelVersion] | None = None) -> ModelVersion:
    """The row for model_id (the active one when no version is given); KeyError when there is none."""
    for row in rows if rows is not None else load_registry():
        if row.model_id == model_id and (row.version == version if version else row.is_active):
            return row
    raise KeyError(f"no registry row for {model_id} version {version or 'active'}")
