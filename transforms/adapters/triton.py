"""Triton Inference Server over gRPC: one ModelInfer call per batch; Triton's dynamic batcher merges callers.

Errors: a request Triton rejects as malformed raises ValueError; anything else (server down, unknown or unloaded
model, timeout) raises InferenceUnavailable naming the server and the gRPC status.
"""

from __future__ import annotations

import grpc
import numpy as np

from transforms.adapters.triton_protocol import SERVICE, pb
from transforms.backends.base import InferenceUnavailable
from transforms.handlers.base import ModelVersion

DATATYPES = {
    np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16", np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32", np.dtype(np.uint8): "UINT8", np.dtype(np.bool_): "BOOL",
}  # fmt: skip
NUMPY = {name: dtype for dtype, name in DATATYPES.items()}
UNLIMITED = -1


class TritonBackend:
    """gRPC client of one Triton server (`host:port`); thread-safe, one channel shared by all callers."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url
        self._timeout_s = timeout_s
        options = [("grpc.max_send_message_length", UNLIMITED), ("grpc.max_receive_message_length", UNLIMITED)]
        self._channel = grpc.insecure_channel(url, options=options)
        self._infer = self._channel.unary_unary(
            SERVICE + "ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        self._server_ready = self._channel.unary_unary(
            SERVICE + "ServerReady",
            request_serializer=pb.ServerReadyRequest.SerializeToString,
            response_deserializer=pb.ServerReadyResponse.FromString,
        )

    def infer(
        self, model: ModelVersion, inputs: dict[str, np.ndarray], output_names: list[str]
    ) -> dict[str, np.ndarray]:
        request = pb.ModelInferRequest(model_name=model.triton_name, model_version=model.version)
        for name, array in inputs.items():
            array = np.ascontiguousarray(array)
            request.inputs.add(name=name, datatype=DATATYPES[array.dtype], shape=array.shape)
            request.raw_input_contents.append(array.tobytes())
        for name in output_names:
            request.outputs.add(name=name)
        try:
            response = self._infer(request, timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise self._error(model, exc) from exc
        return {
            t.name: np.frombuffer(raw, NUMPY[t.datatype]).reshape(tuple(t.shape))
            for t, raw in zip(response.outputs, response.raw_output_contents, strict=True)
        }

    def _error(self, model: ModelVersion, exc: grpc.RpcError) -> Exception:
        code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
        message = f"Triton {self.url}, {model.triton_name} v{model.version}: {code.name}: {details}"
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return ValueError(message)
        return InferenceUnavailable(message)

    def ready(self) -> bool:
        try:
            return self._server_ready(pb.ServerReadyRequest(), timeout=min(2.0, self._timeout_s)).ready
        except grpc.RpcError:
            return False

    def close(self) -> None:
        self._channel.close()
