"""The inference back-end port: run one batch of one model version."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from transforms.handlers.base import ModelVersion


class InferenceUnavailable(RuntimeError):
    """The back end cannot serve now (server down, timeout); callers answer 503 or retry."""


class InferenceBackend(Protocol):
    """Runs a batch through a model; `inputs` maps input name -> array with a leading batch axis."""

    def infer(
        self, model: ModelVersion, inputs: dict[str, np.ndarray], output_names: list[str]
    ) -> dict[str, np.ndarray]: ...

    def ready(self) -> bool: ...

    def close(self) -> None: ...
