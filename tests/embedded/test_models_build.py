"""A real (tiny) recipe run in the build environment: a result that differs from the lock fails loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.model_build.build import build_one, load_lock
from runners.model_build.env import ModelBuildError, sha256_file


def test_build_reproduces_the_locked_bytes(tmp_path: Path) -> None:
    entry = load_lock()["tiny-rgb/1"]
    build_one("tiny-rgb/1", json.loads(json.dumps(entry)), tmp_path / "tiny", update_lock=False)
    assert sha256_file(tmp_path / "tiny" / "model.onnx") == entry["artifacts"]["model.onnx"]["sha256"]


def test_build_differing_from_the_lock_fails(tmp_path: Path) -> None:
    entry = json.loads(json.dumps(load_lock()["tiny-rgb/1"]))
    entry["artifacts"]["model.onnx"]["sha256"] = "f" * 64
    with pytest.raises(ModelBuildError, match=r"different files than models/models\.lock\.json"):
        build_one("tiny-rgb/1", entry, tmp_path / "tiny", update_lock=False)
    assert not (tmp_path / "tiny").exists()  # nothing unverified reaches the store
