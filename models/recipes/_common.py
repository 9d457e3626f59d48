"""Helpers shared by the build recipes. Runs inside the throw-away build environment, not the service's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

BATCH = "batch"


def parse_args() -> argparse.Namespace:
    """Every recipe takes the unpacked source package(s) and an output directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", type=Path, required=True, help="Directory holding the unpacked sources.")
    parser.add_argument("--out", type=Path, required=True, help="Directory to write model.onnx and labels.json.")
    return parser.parse_args()


def static_dims(model: onnx.ModelProto) -> tuple[dict[str, list], dict[str, list]]:
    """The current input/output dims of a model (dim_param where symbolic)."""

    def dims(values: list) -> dict[str, list]:
        return {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values
        }

    return dims(model.graph.input), dims(model.graph.output)


def dynamic_batch(model: onnx.ModelProto, **overrides: list) -> onnx.ModelProto:
    """Make axis 0 of every input and output the symbolic `batch` axis (plus any other dims given by name)."""
    inputs, outputs = static_dims(model)
    for table in (inputs, outputs):
        for name, dims in table.items():
            table[name] = overrides.get(name, [BATCH, *dims[1:]])
    return update_inputs_outputs_dims(model, inputs, outputs)


def drop_initializer_inputs(model: onnx.ModelProto) -> None:
    """Old exporters list weights as graph inputs; removing them lets ONNX Runtime fold constants."""
    names = {init.name for init in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(keep)


def rename_io(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    """Rename graph inputs/outputs (and every reference to them) to stable, readable names."""
    for node in model.graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        value.name = mapping.get(value.name, value.name)


def prune(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes and initializers no graph output depends on."""
    needed = {o.name for o in model.graph.output}
    keep = []
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(keep))
    inits = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    return model


def canonical_names(model: onnx.ModelProto) -> None:
    """Name nodes, intermediate tensors and weights by position: converters number them from counters that
    differ between runs, and the lock file needs the same bytes from the same recipe."""
    keep = {v.name for v in [*model.graph.input, *model.graph.output]}
    mapping: dict[str, str] = {}
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}_{node.op_type}"
        for name in node.input:
            if name and name not in keep and name not in mapping:
                mapping[name] = f"w{len(mapping)}"
        for k, name in enumerate(node.output):
            if name and name not in keep:
                mapping[name] = f"t{i}_{k}"
    rename_io(model, mapping)
    for init in model.graph.initializer:
        init.name = mapping.get(init.name, init.name)
    inits = sorted(model.graph.initializer, key=lambda t: t.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    del model.graph.value_info[:]


def save(model: onnx.ModelProto, labels: list[str], out: Path, **metadata: str) -> None:
    """Check and write model.onnx (metadata names the source) and labels.json, byte-for-byte reproducibly."""
    out.mkdir(parents=True, exist_ok=True)
    model = prune(model)
    canonical_names(model)
    model.doc_string = model.graph.doc_string = ""  # converters leave local paths here
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    (out / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
    (out / "labels.json").write_text(json.dumps(labels, indent=0) + "\n")
