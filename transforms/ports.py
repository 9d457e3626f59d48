"""The ports the use cases run on, bundled; `transforms/composition.py` fills them from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from transforms.backends.base import InferenceBackend
from transforms.background import BackgroundWriter
from transforms.blobs import BlobStore
from transforms.cache import ResultCache
from transforms.catalog import ModelCatalog
from transforms.fetch import ImageFetcher
from transforms.handlers import get_handler
from transforms.handlers.base import ModelHandler, ModelVersion
from transforms.raw_outputs import RawOutputWriter
from transforms.routing import VersionRouter
from transforms.settings import Settings
from transforms.store import FinishedRequest, Store


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

    def model_for(self, model_id: str) -> ModelVersion:
        """The registry row of the version that serves this item: routed once (canary draw included), before any
        cache lookup; unknown_model (404) when there is none."""
        return self.catalog.get(model_id, self.router.resolve(model_id))

    def handler(self, model: ModelVersion) -> ModelHandler:
        """The (cached) handler of a model version, bound to this process's model store.

        The store comes from these settings, not a process-wide default: a Flink TaskManager runs a shipped copy
        of the code, where <checkout>/var/models does not exist.
        """
        key = (model.model_id, model.version)
        if key not in self._handlers:
            self._handlers[key] = get_handler(model, self.settings.resolved_model_store)
        return self._handlers[key]

    @cached_property
    def raw_outputs(self) -> RawOutputWriter:
        """Raw model outputs to the blob store, written in the background (started on first use)."""
        return RawOutputWriter(self.blobs)

    @cached_property
    def finished_requests(self) -> BackgroundWriter[FinishedRequest]:
        """Answered sync requests (request + result rows), written in batches in the background."""
        return BackgroundWriter(
            "request_rows",
            self.store.insert_finished,
            max_batch=self.settings.request_rows_max_batch,
            linger_s=self.settings.request_rows_linger_ms / 1000,
        )

    @cached_property
    def processing_marks(self) -> BackgroundWriter[str]:
        """pending -> processing marks of batch requests, written in the background: a mark only moves a pending
        request forward (never a done one back), so it may land after the result without harm."""
        return BackgroundWriter("processing_marks", self.store.mark_processing, max_batch=1000, linger_s=0.05)

    def close(self) -> None:
        """Flush the background writers, then close the connections they write through."""
        for writer in ("raw_outputs", "finished_requests", "processing_marks"):
            if writer in self.__dict__:  # only those started
                self.__dict__[writer].close()
        self.backend.close()
        self.fetcher.close()
        self.store.close()
