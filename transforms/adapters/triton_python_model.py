"""Triton Python-backend model: runs its version's `model.onnx` with ONNX Runtime on CPU.

Copied into every version directory of the generated repository (`transforms/adapters/triton_repository.py`).
The dynamic batcher hands `execute` several requests; those whose shapes agree run as one batch.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", params.get("allow_spinning", "0"))
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def execute(self, requests):
        arrays = [
            {name: pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs} for r in requests
        ]
        groups = {}
        for i, feed in enumerate(arrays):
            groups.setdefault(tuple(feed[n].shape[1:] for n in self.inputs), []).append(i)
        responses = [None] * len(requests)
        for members in groups.values():
            feed = {n: np.concatenate([arrays[i][n] for i in members]) for n in self.inputs}
            try:
                results = self.session.run(self.outputs, feed)
            except Exception as exc:
                for i in members:
                    responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
                continue
            start = 0
            for i in members:
                rows = len(arrays[i][self.inputs[0]])
                parts = zip(self.outputs, results, strict=True)
                tensors = [pb_utils.Tensor(n, out[start : start + rows]) for n, out in parts]
                responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
                start += rows
        return responses
