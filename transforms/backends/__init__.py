"""The inference back-end port and the in-process micro-batcher; the adapters are `transforms/adapters/`."""

from __future__ import annotations

from transforms.backends.base import InferenceBackend, InferenceUnavailable

__all__ = ["InferenceBackend", "InferenceUnavailable"]
