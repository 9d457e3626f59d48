"""Triton's gRPC messages (KServe v2 protocol) from the `tritonclient` wheel, with calls made through grpc.

Why not `tritonclient.grpc.InferenceServerClient`: its generated service stub refuses to import with grpcio older
than the version it was generated with (1.67), while apache-beam 2.61 (pinned by apache-flink) holds grpcio
below 1.66. The message modules themselves are plain protobuf, so they are loaded from the same wheel (without
running the package's `__init__`) and the RPCs are called by their method paths, which is all the stub does.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from types import ModuleType

SERVICE = "/inference.GRPCInferenceService/"


def _load_messages() -> ModuleType:
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tritonclient is not installed")
    grpc_dir = Path(spec.submodule_search_locations[0]) / "grpc"
    # service_pb2 imports `from tritonclient.grpc import model_config_pb2`: answer that from a stand-in
    # package while loading, then put back whatever was there.
    stand_in = types.ModuleType("tritonclient.grpc")
    stand_in.__path__ = [str(grpc_dir)]
    saved = sys.modules.get("tritonclient.grpc")
    sys.modules["tritonclient.grpc"] = stand_in
    try:
        for name in ("model_config_pb2", "service_pb2"):
            file_spec = importlib.util.spec_from_file_location(f"tritonclient.grpc.{name}", grpc_dir / f"{name}.py")
            assert file_spec is not None and file_spec.loader is not None
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            setattr(stand_in, name, module)
        return stand_in.service_pb2
    finally:
        if saved is None:
            sys.modules.pop("tritonclient.grpc", None)
        else:
            sys.modules["tritonclient.grpc"] = saved


pb = _load_messages()
