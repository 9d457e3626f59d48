"""The ONNX graph a back end serves: the registry artifact with its handler's normalisation in front.

Callers send uint8 pixels (`PIXELS_INPUT`: batch x height x width x RGB, what `ModelHandler.pixels` makes) and the
graph does the rest: float conversion, channel order, mean and std, layout. So a quarter of the bytes cross the
wire to Triton, no client spends CPU on float arithmetic, and on a GPU the normalisation runs there. The artifact
itself stays the upstream model (its hash, its evaluation, the raw loops of the benchmarks); the served graph is
composed from it whenever a back end opens it: in memory for in-process ONNX Runtime, as the version's
`model.onnx` in the Triton repository. The operators (Gather, Transpose, Cast, Sub, Div) compute what
`Normalisation.apply` computes in float32, in the same order, so outputs agree with the numpy path to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transforms.handlers.base import PIXELS_INPUT, ModelHandler

PREFIX = "imgrec_normalise/"


def served_graph(artifact: Path, handler: ModelHandler) -> bytes:
    """The serialised ONNX model that takes `PIXELS_INPUT` and feeds the artifact's own input, normalised.

    Raises ValueError when the artifact's input is not the handler's 4-D image input.
    """
    import onnx  # here, not with the module: the Flink operators import the composition root but never compose
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(artifact))
    graph = model.graph
    name = handler.input_name
    original = next((i for i in graph.input if i.name == name), None)
    if original is None:
        raise ValueError(f"{artifact}: no input {name!r} to feed")
    if any(i.name == PIXELS_INPUT for i in graph.input) or any(PIXELS_INPUT in n.output for n in graph.node):
        raise ValueError(f"{artifact}: the artifact already names a tensor {PIXELS_INPUT!r}")
    dims = [d.dim_value or d.dim_param or None for d in original.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise ValueError(f"{artifact}: input {name!r} has {len(dims)} axes, an image input has 4")
    norm = handler.normalisation
    height, width = (dims[2], dims[3]) if norm.channels_first else (dims[1], dims[2])
    shape = [dims[0] or "batch", height or "height", width or "width", 3]

    def const(suffix: str, values: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(values, PREFIX + suffix))
        return PREFIX + suffix

    # Reordering and layout on the uint8 pixels (a quarter of the bytes to move), then the float arithmetic.
    nodes, x = [], PIXELS_INPUT
    if norm.bgr:
        order = const("bgr_order", np.array([2, 1, 0], np.int64))
        nodes.append(helper.make_node("Gather", [x, order], [PREFIX + "bgr"], axis=3))
        x = PREFIX + "bgr"
    if norm.channels_first:
        nodes.append(helper.make_node("Transpose", [x], [PREFIX + "planar"], perm=[0, 3, 1, 2]))
        x = PREFIX + "planar"
    per_channel = (1, 3, 1, 1) if norm.channels_first else (1, 1, 1, 3)
    mean = const("mean", np.asarray(norm.mean, np.float32).reshape(per_channel))
    std = const("std", np.asarray(norm.std, np.float32).reshape(per_channel))
    nodes.append(helper.make_node("Cast", [x], [PREFIX + "float"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Sub", [PREFIX + "float", mean], [PREFIX + "centred"]))
    nodes.append(helper.make_node("Div", [PREFIX + "centred", std], [name]))

    graph.input.remove(original)
    graph.input.insert(0, helper.make_tensor_value_info(PIXELS_INPUT, TensorProto.UINT8, shape))
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    onnx.checker.check_model(model)
    return model.SerializeToString()
