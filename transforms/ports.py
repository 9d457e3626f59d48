"""The service's ports, each built from settings: the real service's adapter or the embedded default."""

from __future__ import annotations

from dataclasses import dataclass, field

from transforms.backends import make_backend
from transforms.backends.base import InferenceBackend
from transforms.blobs import BlobStore, make_blob_store
from transforms.cache import ResultCache, make_cache, redis_client
from transforms.catalog import ModelCatalog
from transforms.handlers import get_handler
from transforms.handlers.base import ModelHandler, ModelVersion
from transforms.routing import VersionRouter, make_router, route_from_versions
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
    _handlers: dict[tuple[str, str], ModelHandler] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Ports:
        """PostgreSQL or SQLite, Redis or in-process, Triton or ONNX Runtime, ... as the settings say."""
        store = Store.from_url(settings.resolved_database_url)
        catalog = ModelCatalog(store)
        client = redis_client(settings.redis_url) if settings.redis_url else None  # one pool: cache and router
        router = make_router(settings, lambda model_id: route_from_versions(catalog.versions(model_id)), client=client)
        return cls(
            settings=settings,
            store=store,
            catalog=catalog,
            router=router,
            cache=make_cache(settings, client),
            backend=make_backend(settings),
            blobs=make_blob_store(settings),
        )

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
        self.store.close()
