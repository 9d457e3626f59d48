"""The lifecycle's refusals: a machine-readable code and a sentence an operator can act on."""

from __future__ import annotations


class LifecycleError(RuntimeError):
    """A lifecycle step that was refused (bad artifact, failed gate, unknown version); nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
