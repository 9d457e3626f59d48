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
from transforms.raw_outputs import KeptImages, RawOutputWriter
from transforms.results import ItemResult, ResultPublisher
from transforms.routing import VersionRouter
from transforms.settings import Settings
from transforms.similarity import SimilarityIndex
from transforms.store import FinishedRequest, Store
from transforms.vector_index import VectorIndexFactory


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
    vectors: VectorIndexFactory
    answers: ResultPublisher | None = None  # the sync path's answers to the results topic; None: not written
    _handlers: dict[tuple[str, str], ModelHandler] = field(default_factory=dict, init=False, repr=False)

    def model_for(self, model_id: str, version: str | None = None) -> ModelVersion:
        """The registry row of the version that serves this item: routed once (canary draw included), before any
        cache lookup, unless the item pins a version (a warm-up); unknown_model (404) when there is none."""
        return self.catalog.get(model_id, version or self.router.resolve(model_id))

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
    def kept_images(self) -> KeptImages:
        """Bytes of the images the sync path inferred, by content hash, written in the background."""
        return KeptImages(self.blobs)

    @cached_property
    def finished_requests(self) -> BackgroundWriter[FinishedRequest]:
        """Answered sync requests (request + result rows), written in batches in the background."""
        return BackgroundWriter(
            "request_rows",
            self.store.requests.insert_finished,
            max_batch=self.settings.request_rows_max_batch,
            linger_s=self.settings.request_rows_linger_ms / 1000,
        )

    @cached_property
    def sync_answers(self) -> BackgroundWriter[ItemResult] | None:
        """Sync answers to the results topic, written in the background after the response; None unless asked."""
        if self.answers is None:
            return None
        return BackgroundWriter("sync_answers", self.answers.publish, max_batch=500, linger_s=0.02)

    @cached_property
    def similarity(self) -> SimilarityIndex:
        """The per-caller similarity indexes (loaded on first use, saved in the background)."""
        interval = self.settings.similarity_save_interval_s
        return SimilarityIndex(self.store.embeddings, self.blobs, self.vectors, interval)

    @cached_property
    def processing_marks(self) -> BackgroundWriter[str]:
        """pending -> processing marks of batch requests, written in the background: a mark only moves a pending
        request forward (never a done one back), so it may land after the result without harm."""
        return BackgroundWriter("processing_marks", self.store.requests.mark_processing, max_batch=1000, linger_s=0.05)

    def close(self) -> None:
        """Flush the background writers, then close the connections they write through."""
        writers = ("raw_outputs", "kept_images", "finished_requests", "processing_marks", "sync_answers", "similarity")
        for writer in writers:
            if self.__dict__.get(writer) is not None:  # only those started
                self.__dict__[writer].close()
        if self.answers is not None:
            self.answers.close()
        self.backend.close()
        self.fetcher.close()
        self.store.close()
