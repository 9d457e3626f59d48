"""The ports the use cases run on, bundled; `transforms/composition.py` fills them from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from transforms.backends.base import InferenceBackend
from transforms.blobs import BlobStore
from transforms.cache import ResultCache
from transforms.catalog import ModelCatalog
from transforms.fetch import ImageFetcher
from transforms.handlers import get_handler
from transforms.handlers.base import ModelHandler, ModelVersion
from transforms.routing import VersionRouter
from transforms.settings import Settings
from transforms.store import Store


@dataclass
class Ports:
    """What the sync recognizer and the batch steps run on."""

    settings: Settings
    store: Store
    catalog: ModelCatalog
    router: VersionRouter
    cache: ResultCache
    backend: InferenceBackend
    blobs: BlobStore
    fetcher: ImageFetcher
    _handlers: dict[tuple[str, str], ModelHandler] = field(default_factory=dict, init=False, repr=False)

    def handler(self, model: ModelVersion) -> ModelHandler:
        """The (cached) handler of a model version, bound to this process's model store.

        The store comes from these settings, not a process-wide default: a Flink TaskManager runs a shipped copy
        of the code, where <checkout>/var/models does not exist.
        """
        key = (model.model_id, model.version)
        if key not in self._handlers:
            self._handlers[key] = get_handler(model, self.settings.resolved_model_store)
        return self._handlers[key]

    def close(self) -> None:
        self.backend.close()
        self.fetcher.close()
        self.store.close()
