"""The Triton back end with no server to talk to: unavailable at once, not after a long hang."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from transforms.adapters.triton import TritonBackend
from transforms.backends.base import InferenceUnavailable
from transforms.handlers.base import PIXELS_INPUT
from transforms.model_registry import find


def test_server_down_is_unavailable_quickly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        backend = TritonBackend(f"127.0.0.1:{port}", timeout_s=2)
        assert not backend.ready()
        with pytest.raises(InferenceUnavailable, match="UNAVAILABLE"):
            backend.infer(find("tiny-rgb"), {PIXELS_INPUT: np.zeros((1, 8, 8, 3), np.uint8)}, ["logits"])
        backend.close()
