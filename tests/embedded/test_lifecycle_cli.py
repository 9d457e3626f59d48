"""`imgrec models` lifecycle commands on the embedded default (SQLite, ONNX Runtime in process) with the built
scene classifier: bad artifacts refused at registration, the gate and --force, a TorchScript upload, the API."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from runners.cli import app
from runners.model_build.env import build_python
from tests.api_helpers import api_client
from transforms.settings import REPO_ROOT, Settings, get_settings

MODEL = "scene-classification"
STORE = REPO_ROOT / "var" / "models"
V1 = STORE / MODEL / "1" / "model.onnx"


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IMGREC_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("IMGREC_MODEL_STORE", str(STORE))
    for name in ("IMGREC_DATABASE_URL", "IMGREC_REDIS_URL", "IMGREC_TRITON_URL", "IMGREC_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def models(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(app, ["models", *args])
    assert (result.exit_code == 0) == ok, result.output + result.stderr
    return result.output if ok else result.stderr


def states(model_id: str) -> dict[str, str]:
    return {r["version"]: r["state"] for r in json.loads(models("list", model_id, "--json"))}


def test_bad_artifacts_are_refused_and_a_failing_version_needs_force(var: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(V1.read_bytes()[: V1.stat().st_size // 2])
    refused = models("register", MODEL, "2", "--artifact", truncated.as_uri(), "--handler", "classifier", ok=False)
    assert "artifact_unloadable" in refused and "not a loadable ONNX model" in refused
    tiny = STORE / "tiny-rgb" / "1" / "model.onnx"  # a real model whose input is 3x8x8
    refused = models("register", MODEL, "2", "--artifact", tiny.as_uri(), "--handler", "classifier", ok=False)
    assert "wrong_input_shape" in refused and "3x8x8" in refused and "3x224x224" in refused
    assert states(MODEL) == {"1": "active"} and not list((var / "artifacts" / MODEL).iterdir())

    copy = tmp_path / "v2.onnx"  # the same network, uploaded again
    shutil.copy(V1, copy)
    out = models("register", MODEL, "2", "--artifact", copy.as_uri(), "--handler", "classifier")
    assert "registered scene-classification v2: registered" in out
    assert "PASS" in models("evaluate", MODEL, "2")
    # A preprocessing slip in a new version: normalised ten times too hard, the answers go wrong.
    wrong = json.dumps({"std": [0.0229, 0.0224, 0.0225]})
    models("register", MODEL, "3", "--artifact", copy.as_uri(), "--handler", "classifier", "--extra", wrong)
    report = models("evaluate", MODEL, "3")
    assert "FAILED: top1 >= active - 2 points" in report and "stored: FAIL" in report
    refused = models("promote", MODEL, "3", ok=False)
    assert "gate_not_passed" in refused and "--force" in refused
    assert states(MODEL) == {"1": "active", "2": "evaluated", "3": "evaluated"}
    models("promote", MODEL, "3", "--force", "--actor", "ops@test")
    assert states(MODEL) == {"1": "retired", "2": "evaluated", "3": "active"}
    assert "FORCED" in models("events", MODEL).splitlines()[0] and "ops@test" in models("events", MODEL)


def constant_model(path: Path, scores: list[float]) -> Path:
    """An ONNX file with open_nsfw's signature that answers `scores` whatever the image: a collapsed model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
        helper.make_node("Unsqueeze", ["zeros", "column"], ["column_of_zeros"]),
        helper.make_node("Add", ["column_of_zeros", "scores"], ["probs"]),
    ]
    constants = [numpy_helper.from_array(np.array(0, np.float32), "zero"),
                 numpy_helper.from_array(np.array([1], np.int64), "column"),
                 numpy_helper.from_array(np.array([scores], np.float32), "scores")]  # fmt: skip
    graph = helper.make_graph(
        nodes, "collapsed", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])], constants,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


def test_a_collapsed_nsfw_version_fails_its_gate(var: Path, tmp_path: Path) -> None:
    # It answers "sfw" whatever the image: on the set of safe photos its best label agrees with the active version's
    # on every image and no quality metric drops, so only the scores' movement from image to image can tell.
    collapsed = constant_model(tmp_path / "collapsed.onnx", [0.99, 0.01]).as_uri()
    models("register", "nsfw-classification", "2", "--artifact", collapsed, "--handler", "open_nsfw")
    report = models("evaluate", "nsfw-classification", "2")
    assert "top1_agreement 1.000" in report and "FAILED: scores move with active's" in report, report
    assert "stored: FAIL" in report
    copy = tmp_path / "v3.onnx"  # the real network, uploaded again, passes
    shutil.copy(STORE / "nsfw-classification" / "1" / "model.onnx", copy)
    models("register", "nsfw-classification", "3", "--artifact", copy.as_uri(), "--handler", "open_nsfw")
    assert "stored: PASS" in models("evaluate", "nsfw-classification", "3")


@pytest.mark.parametrize(("model_id", "handler"), [
    ("scene-classification", "classifier"), ("object-detection", "nanodet"), ("nsfw-classification", "open_nsfw"),
])  # fmt: skip
def test_a_version_with_shuffled_classes_fails_its_gate(var: Path, tmp_path: Path, model_id: str, handler: str) -> None:
    # The active network with its class names in another order: every answer names the wrong class.
    names = json.loads((STORE / model_id / "1" / "labels.json").read_text())
    shuffled = tmp_path / "labels.json"
    shuffled.write_text(json.dumps(names[1:] + names[:1]))  # a rotation: no name keeps its index
    artifact = (STORE / model_id / "1" / "model.onnx").as_uri()
    models("register", model_id, "2", "--artifact", artifact, "--handler", handler, "--labels", shuffled.as_uri())
    report = models("evaluate", model_id, "2")
    assert "stored: FAIL" in report and "FAILED:" in report, report


def test_a_torchscript_upload_is_served_as_onnx(var: Path, tmp_path: Path) -> None:
    scripted = tmp_path / "tiny.pt"
    script = (
        "import sys, torch\n"
        "class MeanColour(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return 8 * x.mean(dim=(2, 3))\n"
        "torch.jit.trace(MeanColour(), torch.zeros(1, 3, 8, 8)).save(sys.argv[1])\n"
    )
    subprocess.run([str(build_python()), "-c", script, str(scripted)], check=True, capture_output=True)
    out = models(
        "register",
        "tiny-rgb",
        "2",
        "--artifact",
        scripted.as_uri(),
        "--handler",
        "classifier",
        "--framework",
        "torchscript",
    )
    assert "framework torchscript" in out
    row = next(r for r in json.loads(models("list", "tiny-rgb", "--json")) if r["version"] == "2")
    assert row["framework"] == "torchscript" and row["source_uri"] == scripted.as_uri()
    kept = var / "artifacts" / "tiny-rgb" / "2"
    assert sorted(p.name for p in kept.iterdir()) == ["labels.json", "model.onnx", "model.pt"]
    report = models("evaluate", "tiny-rgb", "2")
    assert "top1_agreement 1.000" in report and "stored: PASS" in report


def test_models_api(var: Path) -> None:
    settings = Settings(var_dir=var, model_store=STORE, _env_file=None)
    with api_client(settings) as (client, headers):
        assert client.get("/v1/models").status_code == 401
        body = client.get("/v1/models", headers=headers).json()
        tiny = next(m for m in body["models"] if m["model_id"] == "tiny-rgb")
        assert tiny == {
            "model_id": "tiny-rgb", "active_version": "1", "canary_version": None, "canary_weight": 0.0,
            "default_confidence_threshold": 0.5, "min_label_count": 1, "labels": ["red", "green", "blue"],
            "versions": [{"version": "1", "state": "active", "framework": "onnx", "handler": "classifier"}],
        }  # fmt: skip
        one = client.get("/v1/models/object-detection", headers=headers).json()
        assert one["active_version"] == "1" and "person" in one["labels"]
        scene = client.get("/v1/models/scene-classification", headers=headers).json()
        assert scene["min_label_count"] == 1
        missing = client.get("/v1/models/nope", headers=headers)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_model"
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/v1/models", "/v1/models/{model_id}"} <= set(paths)
