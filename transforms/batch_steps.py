"""The engine-agnostic steps of the batch path, shared by the Flink job and the embedded worker threads.

parse a message -> route the version once + fetch + hash -> cache lookup -> micro-batch of references -> admit
(request rows) + read + decode + preprocess + infer + postprocess + cache put -> threshold -> store (idempotent) +
progress -> the item's result message (done or failed; dead letters too) and, after a batch's last item, its
completion event.

Every value passed between steps is a small picklable dataclass that refers to its image (a blob URI) instead of
carrying it: bytes are read where they are decoded, inside the micro-batch, so an engine never ships or buffers
pixels (only an http(s) image, which cannot be read twice the same way, travels as its compressed bytes). Store
writes and cache puts are one round trip per micro-batch; the route is read once per model per
`batch_route_memo_s`; the cache lookup (keyed by image, for in-flight dedup) is the one per-item round trip.

Per-item faults (bad image, unreachable URL, unknown model) fail that item with a machine-readable code; an
unavailable inference back end is retried, then raised so the engine can replay the micro-batch; any other
inference fault fails the micro-batch's items (`inference_failed`) instead of replaying them forever.

A step that finds Triton, the database or the blob store unavailable retries with backoff for
`Settings.dependency_retry_s` (see `transforms.retry`), then raises so the engine replays it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum

import numpy as np
from pydantic import ValidationError

from transforms.cache import CachedResult, CacheKey
from transforms.errors import RecognitionError
from transforms.handlers.base import Label, ModelHandler, ModelVersion, Prediction, PreprocessMeta
from transforms.inference import infer_pixels
from transforms.intake import decode_image, sha256_hex
from transforms.messages import BatchItemMessage
from transforms.model_metrics import observe_answer, observe_error
from transforms.ports import Ports
from transforms.raw_outputs import raw_key
from transforms.results import BatchCompleted, ItemResult, failed_result, lenient_identity
from transforms.retry import OUTAGES, OutageRetry
from transforms.stages import StageTimer
from transforms.store import CompletedItem, StoreUnavailable
from transforms.thresholds import apply_model_threshold

log = logging.getLogger(__name__)

BATCH_PATH = "batch"  # the `path` label of the batch path's stage timings


class BadMessage(ValueError):
    """A message that is not a valid batch item; it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FetchedItem:
    """An item whose image was read and hashed, with the model version chosen (once, here).

    `data` holds the bytes only where they cannot be read again the same way (an http(s) URL, an archive read by a
    backfill); None: the image is read again from `msg.image_uri` (a claim check in the blob store) where it is
    decoded.
    """

    msg: BatchItemMessage
    model: ModelVersion
    image_hash: str
    data: bytes | None = None

    @property
    def cache_key(self) -> str:
        """Key of the cache lookup (and of in-flight dedup): one image through one model version."""
        return f"{self.image_hash}|{self.model.model_id}|{self.model.version}"

    def batch_key(self, shards: int = 1) -> str:
        """Key of micro-batching: items of one model version share an inference call; `shards` > 1 spreads a
        version over that many keys by image hash (copies of an image share a key, so they still meet)."""
        key = model_key(self.model)
        return f"{key}|{int(self.image_hash[:8], 16) % shards}" if shards > 1 else key


@dataclass
class Outcome:
    """What the model said about one item (unthresholded), ready for the sinks."""

    msg: BatchItemMessage
    model: ModelVersion
    image_hash: str
    labels: list[Label]
    cache_hit: bool
    raw_output_uri: str | None = None
    embedding: np.ndarray | None = None
    error: RecognitionError | None = None  # the micro-batch failed: the item is stored as failed

    def batch_key(self) -> str:
        """Key of grouping outcomes for the store: one model version."""
        return model_key(self.model)


def model_key(model: ModelVersion) -> str:
    return f"{model.model_id}|{model.version}"


class Settle(Enum):
    """What becomes of the copies of an image parked behind its in-flight first copy."""

    WAIT = "wait"  # the first copy is still on its way: check again later
    HITS = "hits"  # its result is cached: serve the parked copies from the cache
    MISSES = "misses"  # it took too long (failed, stuck) or the input ended: infer the parked copies themselves


@dataclass(frozen=True)
class InFlightDedup:
    """The rules of in-flight dedup for one cache key, on millisecond clock readings (engine-agnostic).

    The first miss of a key goes on to be inferred and marks the key in flight (`since`: when it went on); later
    misses of the key are parked while it is in flight and re-checked every `recheck_ms`: they become cache hits
    once its entry is cached, or go on as misses after `give_up_ms` or at the end of the input. No copy is lost
    and none waits forever.
    """

    recheck_ms: int = 250
    give_up_ms: int = 30_000

    def next_check(self, now: int) -> int:
        """The next re-check after `now`, on a grid of `recheck_ms`, so that asking again for the same one is a
        no-op for a timer service that keeps one timer per key and time (Flink's does)."""
        return (now // self.recheck_ms + 1) * self.recheck_ms

    def settle(self, since: int | None, now: int, cached: bool, input_ended: bool = False) -> Settle:
        """The decision for the parked copies of a key at `now`; anything but WAIT also ends the in-flight mark."""
        if cached:
            return Settle.HITS
        if input_ended or since is None or now - since >= self.give_up_ms:
            return Settle.MISSES
        return Settle.WAIT


@dataclass(frozen=True)
class CompletionWatch:
    """What the answers of one batch have shown so far; an engine keeps one per batch in checkpointed state.

    Answers are counted, and only once they reach the batch's size is the store asked whether it closed the batch
    (a redelivered item can be answered twice, so the count alone never decides). `total` None: a batch the store
    does not know, which never completes here.
    """

    total: int | None
    seen: int = 0
    announced: bool = False

    @property
    def due(self) -> bool:
        """Time to ask the store."""
        return not self.announced and self.total is not None and self.seen >= self.total


@dataclass
class PreparedBatch:
    """A micro-batch ready for the back end (made by `BatchSteps.prepare_batch`): its items, the stacked uint8
    pixels of each distinct readable image (`hashes` in row order) and why the others cannot be read."""

    model: ModelVersion
    items: list[FetchedItem]
    hashes: list[str] = field(default_factory=list)
    pixels: np.ndarray | None = None  # None: no image of the micro-batch could be read
    metas: list[PreprocessMeta] = field(default_factory=list)
    failures: dict[str, RecognitionError] = field(default_factory=dict)
    error: RecognitionError | None = None  # a handler fault: every item fails


def model_fault(model: ModelVersion, exc: Exception) -> RecognitionError:
    """The error of a micro-batch that a model or handler fault failed (logged and counted)."""
    log.exception("micro-batch of %s failed", model_key(model))
    observe_error(model.model_id, model.version, "inference_failed")
    return RecognitionError("inference_failed", f"inference failed: {exc}")


# What `BatchSteps.prepare` makes of one image: the model's pixels and their mapping meta, or why it cannot be read.
Prepared = tuple[np.ndarray, PreprocessMeta] | RecognitionError


def is_url(uri: str) -> bool:
    """An image reference fetched over HTTP (else a blob URI)."""
    return uri.startswith(("http://", "https://"))


def answer_key(answer: ItemResult) -> str:
    """Key of announcing an answer: its batch, whose completion it counts towards (a lone item: its request)."""
    return answer.batch_id or answer.request_id


def by_batch(answers: Iterable[ItemResult]) -> list[list[ItemResult]]:
    """Answers grouped by `answer_key`, in order of first appearance (an engine hands each group on as one record)."""
    groups: dict[str, list[ItemResult]] = {}
    for answer in answers:
        groups.setdefault(answer_key(answer), []).append(answer)
    return list(groups.values())


def parse_message(raw: bytes | str) -> BatchItemMessage:
    """Parse and validate one message of the batch topic; raises BadMessage with a readable reason."""
    try:
        return BatchItemMessage.from_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors())
        raise BadMessage(f"invalid batch item: {problems}") from exc
    except (ValueError, TypeError) as exc:  # not JSON, not UTF-8, not an object
        raise BadMessage(f"not a JSON batch item: {exc}") from exc


def dead_letter(raw: bytes | str, reason: str) -> str:
    """The dead-letter record: the reason, when, and the original message as text."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return json.dumps({"reason": reason, "rejected_at": datetime.now(UTC).isoformat(), "message": text})


def rejected_result(raw: bytes | str, reason: str) -> ItemResult | None:
    """The `failed` answer to a dead-lettered message, when a request_id can still be read from it, so its
    producer does not wait for an answer that will not come. The store is not touched: the message names no
    request it could be trusted to change."""
    identity = lenient_identity(raw)
    if identity is None:
        return None
    return failed_result(*identity, "invalid_message", reason)


class BatchSteps:
    """The batch path's steps over the service's ports; one instance per worker (thread or operator)."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.retry = OutageRetry(ports.settings.dependency_retry_s)
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self.ports.close()

    @property
    def pool(self) -> ThreadPoolExecutor:
        """Threads that read, decode and preprocess a micro-batch's images (started on first use)."""
        if self._pool is None:
            threads = max(1, self.ports.settings.preprocess_threads)
            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="imgrec-preprocess")
        return self._pool

    # --- per item -------------------------------------------------------------------------------------------

    def admit(self, msgs: Sequence[BatchItemMessage]) -> None:
        """Create the request rows of messages a producer wrote straight to Kafka (no-op for API items), in one
        statement; every step that writes an item's state admits it first."""
        if msgs:
            self.retry(self.ports.store.requests.ensure, msgs)

    def fetch(self, msg: BatchItemMessage) -> FetchedItem:
        """Route the model to a version, read the image bytes and hash them; raises RecognitionError."""
        return self.retry(self._fetch, msg)

    def _fetch(self, msg: BatchItemMessage) -> FetchedItem:
        timer = StageTimer(BATCH_PATH)
        with timer.stage("route"):
            model = self.ports.model_for(msg.model_id, msg.model_version)
        with timer.stage("fetch"):
            data = self.read_image(msg.image_uri)
        with timer.stage("hash"):
            item = FetchedItem(msg, model, sha256_hex(data), data if is_url(msg.image_uri) else None)
        timer.finish()
        return item

    def read_image(self, uri: str) -> bytes:
        """The bytes of an image reference: an http(s) URL (SSRF-guarded) or a blob-store URI."""
        if is_url(uri):
            return self.ports.fetcher.fetch(uri, max_bytes=self.ports.settings.batch_max_bytes)
        return self.ports.blobs.get(uri)

    def lookup(self, item: FetchedItem) -> Outcome | None:
        """The cached labels of this image and model version, or None on a miss."""
        hits = self.lookup_copies([item])
        return hits[0] if hits else None

    def lookup_copies(self, copies: Sequence[FetchedItem]) -> list[Outcome] | None:
        """Cache hits for copies of one image through one model version (one cache read), or None on a miss."""
        first = copies[0]
        timer = StageTimer(BATCH_PATH)
        with timer.stage("cache_get"):
            hit = self.ports.cache.get(first.image_hash, first.model.model_id, first.model.version)
        timer.finish()
        if hit is None:
            return None
        return [
            Outcome(c.msg, c.model, c.image_hash, list(hit.labels), cache_hit=True, embedding=hit.embedding)
            for c in copies
        ]

    def prepare(self, handler: ModelHandler, item: FetchedItem) -> tuple[Prepared, StageTimer]:
        """Read (a claim check) and decode the image (with the pixel guard), and turn it into the model's pixels
        (uint8); an unreadable image gives its RecognitionError. Runs on the preprocessing threads."""
        timer = StageTimer()
        try:
            with timer.stage("read"):
                data = item.data if item.data is not None else self.retry(self.read_image, item.msg.image_uri)
            with timer.stage("decode"):
                image = decode_image(data, max_pixels=self.ports.settings.max_pixels)
            with timer.stage("preprocess"):
                return handler.pixels(image), timer
        except RecognitionError as exc:
            return exc, timer

    def fail(
        self, msg: BatchItemMessage, error: RecognitionError, image_hash: str | None = None,
        model: ModelVersion | None = None,
    ) -> ItemResult:
        """Record a per-item failure with its code (the rest of the batch goes on); returns its answer."""
        self.admit([msg])
        self.retry(self.ports.store.requests.fail, msg.request_id, error.code, error.message, image_hash)
        return failed_result(
            msg.request_id, msg.caller_id, error.code, error.message, batch_id=msg.batch_id,
            item_index=msg.item_index, model_id=msg.model_id, model_version=model.version if model else None,
        )  # fmt: skip

    # --- per micro-batch ------------------------------------------------------------------------------------

    def infer(self, items: Sequence[FetchedItem]) -> list[Outcome]:
        """A micro-batch of one model version, prepared and inferred (see `prepare_batch` and `infer_prepared`)."""
        return self.infer_prepared(self.prepare_batch(items)) if items else []

    def prepare_batch(self, items: Sequence[FetchedItem]) -> PreparedBatch:
        """A micro-batch of one model version made ready for the back end: its request rows admitted (one
        statement) and marked processing, its distinct images read, decoded and preprocessed on the preprocessing
        threads and stacked as uint8 pixels (4x smaller than the float input, which `infer_prepared` makes). An
        image that cannot be read or decoded fails its items only; a handler fault fails
        the micro-batch's items (`inference_failed`)."""
        model = items[0].model
        if any(model_key(i.model) != model_key(model) for i in items):
            raise ValueError("a micro-batch holds one model version")
        timer = StageTimer(BATCH_PATH)
        with timer.stage("admit"):
            self.admit([i.msg for i in items])
        for item in items:
            self.ports.processing_marks.submit(item.msg.request_id)
        unique: dict[str, FetchedItem] = {}
        for item in items:
            unique.setdefault(item.image_hash, item)
        batch = PreparedBatch(model, list(items))
        try:
            handler = self.ports.handler(model)
            with timer.stage("prepare"):
                prepared = list(self.pool.map(lambda item: self.prepare(handler, item), unique.values()))
            pixels = []
            for item, (result, item_timer) in zip(unique.values(), prepared, strict=True):
                timer.merge(item_timer)
                if isinstance(result, RecognitionError):
                    batch.failures[item.image_hash] = result
                    continue
                batch.hashes.append(item.image_hash)
                pixels.append(result[0])
                batch.metas.append(result[1])
            if pixels:
                with timer.stage("stack"):
                    batch.pixels = np.stack(pixels)
        except OUTAGES:
            raise  # the engine replays the micro-batch (Flink: from the last checkpoint)
        except Exception as exc:  # a handler fault: replaying it would stall the job forever
            batch.error = model_fault(model, exc)
        # A replay that finds these images' cache entries tells its own first attempt from a real hit by the
        # processing mark (`Store.complete_requests`), so the marks are written before inference caches anything.
        if not self.ports.processing_marks.flush(timeout_s=self.ports.settings.dependency_retry_s):
            raise StoreUnavailable("the micro-batch's processing marks could not be written")
        timer.finish()
        return batch

    def infer_prepared(self, batch: PreparedBatch) -> list[Outcome]:
        """One back-end call for a prepared micro-batch (identical images inferred once), then postprocessing.

        Raw outputs go to the blob store and unthresholded labels (and vectors) to the cache (what the model said).
        An unavailable back end is retried, then raised so the engine replays the micro-batch; a model fault fails
        its items (`inference_failed`).
        """
        model, error = batch.model, batch.error
        timer = StageTimer(BATCH_PATH)
        predictions: list[Prediction] = []
        if error is None and batch.pixels is not None:
            try:
                handler = self.ports.handler(model)
                backend, pixels, metas = self.ports.backend, batch.pixels, batch.metas
                predictions = self.retry(infer_pixels, model, handler, backend, pixels, metas, timer)
            except OUTAGES:
                raise
            except Exception as exc:  # a model fault: replaying it would stall the job forever
                error = model_fault(model, exc)
        if error is not None:
            return [Outcome(i.msg, model, i.image_hash, [], False, error=error) for i in batch.items]
        by_hash: dict[str, tuple[CachedResult, str]] = {}
        with timer.stage("raw_output"):
            for image_hash, prediction in zip(batch.hashes, predictions, strict=True):
                uri = self.ports.raw_outputs.submit(raw_key(model.model_id, model.version, image_hash), prediction.raw)
                by_hash[image_hash] = (CachedResult(prediction.labels, prediction.embedding), uri)
        with timer.stage("cache_put"):
            self.ports.cache.put_many(
                [(CacheKey(h, model.model_id, model.version), result) for h, (result, _) in by_hash.items()]
            )
        timer.finish()
        outcomes = []
        for i in batch.items:
            if i.image_hash in batch.failures:
                outcomes.append(Outcome(i.msg, model, i.image_hash, [], False, error=batch.failures[i.image_hash]))
                continue
            result, uri = by_hash[i.image_hash]
            outcomes.append(Outcome(i.msg, model, i.image_hash, list(result.labels), False, uri, result.embedding))
        return outcomes

    def finish(self, outcomes: Sequence[Outcome]) -> list[ItemResult]:
        """Threshold each item (its own or the model's threshold) and store all of them in one transaction;
        returns their answers (the failed items of a failed micro-batch are stored and answered as failed).

        Idempotent on (request_id, model_id, model_version): a replay after a restart changes nothing.
        """
        timer = StageTimer(BATCH_PATH)
        with timer.stage("admit"):  # misses were admitted by `infer`
            self.admit([o.msg for o in outcomes if o.cache_hit])
        ok = [o for o in outcomes if o.error is None]
        failed = [self.fail(o.msg, o.error, o.image_hash, o.model) for o in outcomes if o.error is not None]
        completed = []
        for o in ok:
            observe_answer(o.model.model_id, o.model.version, o.labels, o.cache_hit)
            kept, applied = apply_model_threshold(o.labels, o.model, o.msg.confidence_threshold, o.msg.min_label_count)
            completed.append(
                CompletedItem(
                    o.msg.request_id,
                    o.model.model_id,
                    o.model.version,
                    o.image_hash,
                    kept,
                    o.raw_output_uri,
                    o.cache_hit,
                    applied,
                    o.embedding,
                )
            )
        with timer.stage("store"):
            self.retry(self.ports.store.requests.complete, completed)
        timer.finish()
        answers = [ItemResult.done(c, o.msg.caller_id, o.msg.batch_id, o.msg.item_index)
                   for o, c in zip(ok, completed, strict=True)]
        return answers + failed

    # --- per batch ------------------------------------------------------------------------------------------

    def answered(
        self, batch_id: str, watch: CompletionWatch | None
    ) -> tuple[CompletionWatch, BatchCompleted | None]:
        """One more answer of an item of `batch_id`: the batch's updated watch and, the first time the store has
        closed the batch (its last item finished), its completion event."""
        if watch is None:
            summary = self.retry(self.ports.store.batches.summary, batch_id)
            watch = CompletionWatch(summary.total_count if summary else None)
        if watch.announced:
            return watch, None
        watch = replace(watch, seen=watch.seen + 1)
        if not watch.due:
            return watch, None
        summary = self.retry(self.ports.store.batches.summary, batch_id)
        if summary is None or summary.completed_at is None:
            return watch, None
        return replace(watch, announced=True), BatchCompleted.of(summary)

    # --- the whole path, for worker threads -----------------------------------------------------------------

    def run(self, raws: Iterable[bytes | str | BatchItemMessage]) -> list[Outcome]:
        """Every step for a handful of messages: what one embedded worker does with what it pulled.

        Bad messages are logged and skipped (there is no dead-letter topic in-process); failed items are
        recorded in the store; misses are inferred in micro-batches of `micro_batch_size` per model version.
        """
        done: list[Outcome] = []
        misses: dict[str, list[FetchedItem]] = {}
        for raw in raws:
            try:
                msg = raw if isinstance(raw, BatchItemMessage) else parse_message(raw)
            except BadMessage as exc:
                log.warning("dropping a bad batch message: %s", exc.reason)
                continue
            try:
                fetched = self.fetch(msg)
            except RecognitionError as exc:
                self.fail(msg, exc)
                continue
            hit = self.lookup(fetched)
            if hit is not None:
                done.append(hit)
            else:
                misses.setdefault(fetched.batch_key(), []).append(fetched)
        size = max(1, self.ports.settings.micro_batch_size)
        for group in misses.values():
            for start in range(0, len(group), size):
                done.extend(self.infer(group[start : start + size]))
        self.finish(done)
        return [o for o in done if o.error is None]
