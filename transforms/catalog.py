"""Registry rows by (model_id, version), read from the store and kept briefly in memory."""

from __future__ import annotations

import threading
import time

from transforms.errors import RecognitionError
from transforms.handlers.base import ModelVersion
from transforms.store import RegistryStore


class ModelCatalog:
    """Looks up registry rows; a short TTL keeps the hot path off the database."""

    def __init__(self, registry: RegistryStore, ttl_s: float = 30.0) -> None:
        self._registry = registry
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[float, list[ModelVersion]]] = {}

    def versions(self, model_id: str) -> list[ModelVersion]:
        """Every version of `model_id`, active first; empty when the model is unknown."""
        with self._lock:
            hit = self._rows.get(model_id)
            if hit and time.monotonic() - hit[0] < self._ttl_s:
                return hit[1]
        rows = self._registry.versions(model_id)
        with self._lock:
            self._rows[model_id] = (time.monotonic(), rows)
        return rows

    def get(self, model_id: str, version: str) -> ModelVersion:
        """One version; unknown ones raise `unknown_model`. A version registered since the rows were read (the route
        may name it before the TTL ends) is looked up again at once."""
        for fresh in (False, True):
            if fresh:
                with self._lock:
                    self._rows.pop(model_id, None)
            for row in self.versions(model_id):
                if row.version == version:
                    return row
        raise RecognitionError("unknown_model", f"Model {model_id!r} has no version {version!r}.")
