"""Triton Inference Server over gRPC: one ModelInfer call per batch; Triton's dynamic batcher merges callers.

Errors: a request Triton rejects as malformed raises ValueError; anything else (server down, unknown or unloaded
model, timeout) raises InferenceUnavailable naming the server and the gRPC status.
"""

from __future__ import annotations

import threading
import time

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
    """gRPC client of Triton at `url` (`host:port`, or `dns:///name:port` for every address a name resolves to,
    balanced round robin); thread-safe, one channel shared by all callers.

    gRPC reads DNS again only when a connection drops, so servers added behind a name (pods KEDA scales out) would
    get no calls: with `channel_max_age_s` the channel is re-opened that often. The old one is closed one age
    later, after its calls have ended (the age is at least the call timeout).
    """

    def __init__(self, url: str, timeout_s: float = 30.0, channel_max_age_s: float = 0.0) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._max_age_s = max(channel_max_age_s, timeout_s) if channel_max_age_s > 0 else 0.0
        self._lock = threading.Lock()
        self._retired: grpc.Channel | None = None
        self._open()

    def _open(self) -> None:
        options = [("grpc.max_send_message_length", UNLIMITED), ("grpc.max_receive_message_length", UNLIMITED),
                   ("grpc.lb_policy_name", "round_robin")]
        self._channel = grpc.insecure_channel(self.url, options=options)
        self._opened_at = time.monotonic()
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

    def _renew_if_old(self) -> None:
        if not self._max_age_s or time.monotonic() - self._opened_at < self._max_age_s:
            return
        with self._lock:
            if time.monotonic() - self._opened_at < self._max_age_s:
                return  # another caller renewed it
            if self._retired is not None:
                self._retired.close()
            self._retired = self._channel
            self._open()

    def infer(
        self, model: ModelVersion, inputs: dict[str, np.ndarray], output_names: list[str]
    ) -> dict[str, np.ndarray]:
        self._renew_if_old()
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
        if self._retired is not None:
            self._retired.close()
        self._channel.close()
