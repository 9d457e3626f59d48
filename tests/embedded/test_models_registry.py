"""The committed registry, its lock file, the built model store and the generated Triton repository."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runners.cli import app
from runners.model_build.build import build_models, is_cached, load_lock, recipe_hash
from runners.model_build.env import sha256_file
from transforms.adapters.served_graph import served_graph
from transforms.composition import write_triton_repository
from transforms.handlers import get_handler
from transforms.model_registry import artifact_path, find, load_registry, lock_key
from transforms.settings import get_settings

STORE = get_settings().resolved_model_store


def test_registry_rows_are_complete_and_locked() -> None:
    rows = load_registry()
    lock = load_lock()
    assert {r.model_id for r in rows} >= {
        "object-detection", "scene-classification", "face-detection", "nsfw-classification"
    }  # fmt: skip
    for row in rows:
        assert row.framework == "onnx" and row.artifact_uri.startswith("model-store://")
        # Detectors may find nothing and an embedding model gives no labels; a classifier always names its best.
        assert row.min_label_count == (0 if row.handler in ("nanodet", "centerface", "embedding") else 1)
        entry = lock[lock_key(row)]
        assert set(entry["artifacts"]) == {"model.onnx", "labels.json"}
        assert all(s["sha256"] and s["version"] for s in entry["sources"])
        get_handler(row, STORE)  # every row names a known handler


def test_built_store_matches_the_lock() -> None:
    lock = load_lock()
    for row in load_registry():
        entry = lock[lock_key(row)]
        directory = artifact_path(row).parent
        assert is_cached(directory, entry, recipe_hash(entry)), f"{row.model_id}: run `imgrec models build`"
        assert len(json.loads((directory / "labels.json").read_text())) == len(get_handler(row, STORE).labels)


def test_a_changed_lock_or_recipe_is_not_cached() -> None:
    row = find("tiny-rgb")
    entry = load_lock()[lock_key(row)]
    directory = artifact_path(row).parent
    tampered = {**entry, "artifacts": {**entry["artifacts"], "model.onnx": {"sha256": "0" * 64, "bytes": 1}}}
    assert not is_cached(directory, tampered, recipe_hash(entry))
    assert not is_cached(directory, entry, "another recipe")


def test_unknown_handler_and_version_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="unknown handler"):
        get_handler(replace(find("tiny-rgb"), handler="nope"), STORE)
    with pytest.raises(KeyError, match="no registry row"):
        find("tiny-rgb", version="99")


def test_models_list_json_reports_built_rows() -> None:
    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["model_id"]: r["built"] for r in rows}["object-detection"] is True


def test_models_build_cached_path_builds_nothing() -> None:
    result = CliRunner().invoke(app, ["models", "build"])
    assert result.exit_code == 0, result.output
    assert all(line.startswith("cached") for line in result.output.strip().splitlines())


@pytest.mark.parametrize("gpu", [False, True])
def test_triton_repository_from_registry(tmp_path: Path, gpu: bool) -> None:
    repo = write_triton_repository(get_settings(), tmp_path / "repo", gpu=gpu)
    for row in load_registry():
        config = (repo / row.triton_name / "config.pbtxt").read_text()
        assert f'name: "{row.triton_name}"' in config and "dynamic_batching" in config
        assert ('backend: "onnxruntime"' in config and "KIND_GPU" in config) == gpu
        version_dir = repo / row.triton_name / row.version
        handler = get_handler(row, get_settings().resolved_model_store)
        assert (version_dir / "model.onnx").read_bytes() == served_graph(artifact_path(row), handler)
        assert (version_dir / "model.py").exists() != gpu
    detection = (repo / "object-detection" / "config.pbtxt").read_text()
    assert 'name: "pixels", data_type: TYPE_UINT8, dims: [ 416, 416, 3 ]' in detection  # normalised in the graph
    assert "max_batch_size: 32" in detection
    # On CPU the python backend's ONNX Runtime threads must not spin between runs (they share the cores).
    assert ('key: "allow_spinning", value: { string_value: "0" }' in detection) != gpu
    assert "dims: [ -1, -1, 3 ]" in (repo / "face-detection" / "config.pbtxt").read_text()


def test_a_fresh_store_is_filled_from_the_user_cache(tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"model_store": tmp_path / "store"})
    results = build_models(settings, only=["tiny-rgb", "face-detection"])
    assert [r.status for r in results] == ["copied", "copied"]
    face = find("face-detection")
    assert sha256_file(artifact_path(face, settings)) == sha256_file(artifact_path(face))


def test_triton_repo_command_writes_the_gpu_variant(tmp_path) -> None:
    from typer.testing import CliRunner

    from runners.cli import app

    out = CliRunner().invoke(app, ["models", "triton-repo", str(tmp_path / "repo"), "--gpu"])
    assert out.exit_code == 0, out.output
    config = (tmp_path / "repo" / "object-detection" / "config.pbtxt").read_text()
    assert 'backend: "onnxruntime"' in config and "KIND_GPU" in config and "dynamic_batching" in config
