"""Run by the model build environment's python: `torchscript_export.py SOURCE DEST SPEC_JSON`."""

import json
import sys
import warnings

import torch


def main() -> None:
    source, dest, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    module = torch.jit.load(source, map_location="cpu").eval()
    example = torch.zeros(1, *spec["input_shape"])
    axes = {name: {0: "batch"} for name in [spec["input_name"], *spec["output_names"]]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but the one that takes a ScriptModule
        torch.onnx.export(
            module,
            (example,),
            dest,
            input_names=[spec["input_name"]],
            output_names=spec["output_names"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


if __name__ == "__main__":
    main()
