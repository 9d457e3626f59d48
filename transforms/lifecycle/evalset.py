"""Labelled evaluation sets, one per model family, shipped as JSON in `models/evaluation/` (see its README).

The photographs come from registry packages installed with the service (scikit-image's `skimage/data`), named
by distribution and path, each with its source and licence; the expected labels and boxes were checked by hand.
A model's set is named by its registry row (`extra.eval_set`).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from transforms.handlers.base import ModelVersion
from transforms.intake import decode_image
from transforms.lifecycle.metrics import Box
from transforms.model_registry import load_registry
from transforms.settings import REPO_ROOT

EVAL_DIR = REPO_ROOT / "models" / "evaluation"
MAX_PIXELS = 40_000_000  # the service's default guard; evaluation photos are far below it


class PackagedImage(BaseModel):
    """A file inside an installed distribution, e.g. scikit-image's skimage/data/chelsea.png."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str
    path: str

    def decode(self) -> Image.Image:
        return decode_image(self.read(), max_pixels=MAX_PIXELS)

    def read(self) -> bytes:
        try:
            dist = metadata.distribution(self.package)
        except metadata.PackageNotFoundError:
            raise FileNotFoundError(
                f"evaluation image {self.path}: package {self.package!r} is not installed"
            ) from None
        return Path(str(dist.locate_file(self.path))).read_bytes()


class ExpectedObject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    box: tuple[float, float, float, float] = Field(description="[x_min, y_min, x_max, y_max] in original pixels.")


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    image: PackagedImage
    accept: list[str] = Field(default_factory=list, description="Classifiers: labels that count as right.")
    objects: list[ExpectedObject] = Field(default_factory=list, description="Detectors: every object to find.")
    source: str
    licence: str
    note: str | None = None


class EvalSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["classification", "detection"]
    description: str
    items: list[EvalItem]

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def expected_boxes(self) -> list[list[Box]]:
        return [[Box(o.label, o.box) for o in item.objects] for item in self.items]

    def expected_labels(self) -> list[list[str]]:
        return [item.accept for item in self.items]


def load_eval_set(name: str, directory: Path = EVAL_DIR) -> EvalSet:
    """The evaluation set `<directory>/<name>.json`; FileNotFoundError names the ones there are."""
    path = directory / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in directory.glob("*.json"))
        raise FileNotFoundError(f"no evaluation set {name!r} in {directory} (known: {known})")
    return EvalSet.model_validate_json(path.read_text())


def eval_set_for(model: ModelVersion, directory: Path = EVAL_DIR) -> EvalSet:
    """The evaluation set a registry row names in `extra.eval_set` (a row seeded before sets existed: the one its
    model has in the committed registry)."""
    committed = {row.model_id: row.extra.get("eval_set") for row in load_registry()}
    name = model.extra.get("eval_set") or committed.get(model.model_id)
    if not name:
        raise FileNotFoundError(f"{model.model_id} v{model.version} names no evaluation set (extra.eval_set)")
    return load_eval_set(name, directory)
