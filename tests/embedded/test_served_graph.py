"""The served graph: uint8 pixels in, the handler's normalisation computed in the graph exactly as numpy does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from transforms.adapters.served_graph import served_graph
from transforms.handlers import get_handler
from transforms.handlers.base import PIXELS_INPUT
from transforms.model_registry import find


def identity_model(path: Path, shape: list[int | str], input_name: str = "input", via: str | None = None) -> Path:
    """An 'artifact' that answers its own input (through a tensor named `via`, if given), so the served graph's
    output is the normalised pixels."""
    hops = [input_name, via] if via else [input_name]
    graph = helper.make_graph(
        [helper.make_node("Identity", [a], [b]) for a, b in zip(hops, [*hops[1:], "out"], strict=True)],
        "identity",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize(
    ("model_id", "shape"),
    [
        ("scene-classification", ["batch", 3, 224, 224]),  # RGB, ImageNet mean/std, channels first
        ("object-detection", ["batch", 3, 416, 416]),  # BGR, channels first
        ("nsfw-classification", ["batch", 224, 224, 3]),  # BGR, mean only, channels last
        ("face-detection", ["batch", 3, "h", "w"]),  # any size the model takes
    ],
)
def test_the_served_graph_normalises_as_the_handler_does(tmp_path: Path, model_id: str, shape: list) -> None:
    handler = get_handler(find(model_id), tmp_path)
    session = ort.InferenceSession(served_graph(identity_model(tmp_path / "m.onnx", shape), handler))
    (served_input,) = session.get_inputs()
    assert served_input.name == PIXELS_INPUT and served_input.type == "tensor(uint8)"
    height, width = (64, 96) if "h" in shape else (shape[2], shape[3]) if shape[1] == 3 else (shape[1], shape[2])
    pixels = np.random.default_rng(7).integers(0, 256, (3, height, width, 3), dtype=np.uint8)
    (out,) = session.run(["out"], {PIXELS_INPUT: pixels})
    np.testing.assert_array_equal(out, handler.normalise(pixels))


def test_an_artifact_without_the_handlers_image_input_is_refused(tmp_path: Path) -> None:
    handler = get_handler(find("scene-classification"), tmp_path)
    with pytest.raises(ValueError, match="no input 'input'"):
        served_graph(identity_model(tmp_path / "a.onnx", ["batch", 3, 8, 8], input_name="data"), handler)
    with pytest.raises(ValueError, match="has 2 axes"):
        served_graph(identity_model(tmp_path / "b.onnx", ["batch", 3]), handler)
    with pytest.raises(ValueError, match="already names a tensor 'pixels'"):
        served_graph(identity_model(tmp_path / "c.onnx", ["batch", 3, 8, 8], via=PIXELS_INPUT), handler)
