"""Inference back ends behind the `InferenceBackend` port, chosen by settings."""

from __future__ import annotations

from transforms.backends.base import InferenceBackend, InferenceUnavailable
from transforms.backends.onnxruntime import OnnxRuntimeBackend
from transforms.backends.triton import TritonBackend
from transforms.settings import Settings

__all__ = ["InferenceBackend", "InferenceUnavailable", "OnnxRuntimeBackend", "TritonBackend", "make_backend"]


def make_backend(settings: Settings) -> InferenceBackend:
    """Triton over gRPC when `triton_url` is set, else in-process ONNX Runtime on the local model store."""
    if settings.triton_url:
        return TritonBackend(settings.triton_url, settings.triton_timeout_s, settings.triton_channel_max_age_s)
    return OnnxRuntimeBackend(
        settings.resolved_model_store,
        providers=settings.ort_providers,
        threads=settings.ort_threads,
        max_batch=settings.micro_batch_size,
    )
