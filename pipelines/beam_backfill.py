"""Backfill: re-score an archive of images with one model version on Apache Beam, through `RunInference`.

manifest (one image a line: a `file://`, `gs://` or `s3://` URI, or `request:<request_id>` for the image of a past
request) -> read + hash -> cache lookup -> decode + preprocess -> RunInference (`ImgrecModelHandler`: the batch
path's inference step on the configured back end, Triton or in-process ONNX Runtime, in batches of up to the
micro-batch size) -> store (the batch path's rows) + Parquet.

Each image becomes a request of the caller `backfill` whose id is derived from the image reference, the model and
the version, so the rows are the batch path's (`inference_requests`, `inference_results`, raw outputs in the blob
store, unthresholded labels in the result cache) and a rerun changes nothing: its images are cache hits, and the
result upserts are idempotent on (request_id, model_id, model_version). Runs on the DirectRunner, on Prism, or on
Dataflow (`dataflow_options`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.batch_steps import BatchSteps, FetchedItem, Outcome
from transforms.composition import build_ports
from transforms.errors import RecognitionError
from transforms.handlers.base import ModelVersion
from transforms.intake import sha256_hex
from transforms.messages import BatchItemMessage
from transforms.model_registry import find
from transforms.settings import Settings

REQUEST_REFERENCE = "request:"
ARCHIVE_SCHEMES = ("file://", "gs://", "s3://")
BACKFILL_CALLER = "backfill"
# Request ids of backfilled images: a name-based UUID of (reference, model, version) under this namespace.
NAMESPACE = uuid.UUID("5b0e8f0e-9a53-4b8e-8d3c-6f1f3c1d2a10")
METRICS = "imgrec.backfill"
PARQUET_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("image_uri", pa.string()),
    ("image_hash", pa.string()),
    ("model_id", pa.string()),
    ("model_version", pa.string()),
    ("labels", pa.string()),  # JSON array of {label, score, bounding_box?}, unthresholded as the model said
    ("cache_hit", pa.bool_()),
])


@dataclass(frozen=True)
class Backfill:
    """One backfill run: which images, through which model version, with which service settings."""

    manifest: str
    model: ModelVersion
    settings: dict[str, Any]  # Settings as JSON: every worker builds its own ports from it
    parquet_dir: str | None = None
    caller_id: str = BACKFILL_CALLER


def request_id_for(reference: str, model: ModelVersion) -> str:
    """The request id of one image through one model version: the same on every run."""
    return "bf-" + uuid.uuid5(NAMESPACE, f"{reference}|{model.model_id}|{model.version}").hex


def read_archive(uri: str, max_bytes: int) -> bytes:
    """The bytes at a `file://`, `gs://` or `s3://` URI through Beam's filesystems (s3 needs apache-beam[aws])."""
    path = unquote(urlparse(uri).path) if uri.startswith("file://") else uri
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            data = handle.read(max_bytes + 1)
    except Exception as exc:  # Beam wraps every filesystem's own errors (BeamIOError, OSError, client errors)
        raise RecognitionError("blob_not_found", f"Cannot read {uri}: {exc}") from exc
    if len(data) > max_bytes:
        raise RecognitionError("image_too_large", f"{uri} is larger than {max_bytes} bytes.")
    return data


class _StepsDoFn(beam.DoFn):
    """Builds the batch steps (the service's ports) from the run's settings once per worker."""

    steps: BatchSteps

    def __init__(self, job: Backfill) -> None:
        self.job = job

    def setup(self) -> None:
        self.steps = BatchSteps(build_ports(Settings(**self.job.settings)))

    def teardown(self) -> None:
        steps = getattr(self, "steps", None)
        if steps is not None:
            steps.close()


class ReadImage(_StepsDoFn):
    """A manifest line -> its request and the image bytes, hashed; an unreadable image fails its request."""

    def __init__(self, job: Backfill) -> None:
        super().__init__(job)
        self.read = Metrics.counter(METRICS, "images_read")
        self.failed = Metrics.counter(METRICS, "images_failed")

    def process(self, line: str) -> Iterator[FetchedItem]:
        reference = line.strip()
        if not reference or reference.startswith("#"):
            return
        try:
            uri = self._resolve(reference)
        except RecognitionError as exc:
            self._fail(self._message(reference, reference), exc)
            return
        msg = self._message(reference, uri)
        try:
            data = self._read(uri)
        except RecognitionError as exc:
            self._fail(msg, exc)
            return
        self.read.inc()
        yield FetchedItem(msg, self.job.model, sha256_hex(data), data)

    def _message(self, reference: str, uri: str) -> BatchItemMessage:
        return BatchItemMessage(
            request_id=request_id_for(reference, self.job.model), caller_id=self.job.caller_id,
            model_id=self.job.model.model_id, image_uri=uri, submitted_at=datetime.now(UTC).isoformat(),
        )

    def _resolve(self, reference: str) -> str:
        """The image URI of a reference: itself, or the stored image of a past request."""
        if not reference.startswith(REQUEST_REFERENCE):
            return reference
        request_id = reference[len(REQUEST_REFERENCE):]
        row = self.steps.ports.store.requests.get(request_id)
        if row is None or not row["image_uri"]:
            raise RecognitionError("request_not_found", f"No past request {request_id!r} with a stored image.")
        return row["image_uri"]

    def _read(self, uri: str) -> bytes:
        if uri.startswith(("http://", "https://")):
            return self.steps.read_image(uri)  # the batch path's own fetch, with its SSRF guard
        if uri.startswith(ARCHIVE_SCHEMES):  # archives, and the claim checks of past requests in the blob store
            return read_archive(uri, self.steps.ports.settings.batch_max_bytes)
        raise RecognitionError("bad_url", f"Not an image reference a backfill reads: {uri!r} "
                                          f"(file://, gs://, s3://, http(s):// or request:<id>).")

    def _fail(self, msg: BatchItemMessage, error: RecognitionError) -> None:
        self.steps.fail(msg, error)
        self.failed.inc()


class CacheLookup(_StepsDoFn):
    """Cache hits go out as outcomes (tagged `hits`); misses go on to inference."""

    HITS = "hits"

    def __init__(self, job: Backfill) -> None:
        super().__init__(job)
        self.hits = Metrics.counter(METRICS, "cache_hits")

    def process(self, item: FetchedItem) -> Iterator[Any]:
        hit = self.steps.lookup(item)
        if hit is not None:
            self.hits.inc()
            yield beam.pvalue.TaggedOutput(self.HITS, hit)
            return
        yield item


class ImgrecModelHandler(ModelHandler[FetchedItem, Outcome, BatchSteps]):
    """RunInference's model: the batch path's inference step (the model's handler on the configured back end).

    A batch is decoded and preprocessed, then one back-end call for up to `max_batch` images (identical images
    inferred once); raw outputs go to the blob store and labels to the cache there. An unavailable back end is
    retried by the step and then raised, so the runner retries the bundle; items whose image cannot be decoded, or
    that a model fault fails, come out failed and are recorded as such by the store step.
    """

    def __init__(self, settings: dict[str, Any], max_batch: int) -> None:
        super().__init__()
        self._settings = settings
        self._max_batch = max_batch

    def load_model(self) -> BatchSteps:
        return BatchSteps(build_ports(Settings(**self._settings)))

    def run_inference(
        self, batch: Sequence[FetchedItem], model: BatchSteps, inference_args: dict[str, Any] | None = None
    ) -> Iterable[Outcome]:
        return model.infer(list(batch))

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": self._max_batch}

    def get_metrics_namespace(self) -> str:
        return METRICS


class StoreResults(_StepsDoFn):
    """Threshold and store a batch of outcomes in one transaction (idempotent), then emit their Parquet rows."""

    def __init__(self, job: Backfill) -> None:
        super().__init__(job)
        self.stored = Metrics.counter(METRICS, "results_stored")
        self.failed = Metrics.counter(METRICS, "images_failed")

    def process(self, outcomes: list[Outcome]) -> Iterator[dict[str, Any]]:
        self.steps.finish(outcomes)
        self.stored.inc(len(outcomes))
        self.failed.inc(sum(o.error is not None for o in outcomes))
        for o in outcomes:
            yield {
                "request_id": o.msg.request_id, "image_uri": o.msg.image_uri, "image_hash": o.image_hash,
                "model_id": o.model.model_id, "model_version": o.model.version,
                "labels": json.dumps([label.to_dict() for label in o.labels]),
                "cache_hit": o.cache_hit,
            }


def build(pipeline: beam.Pipeline, job: Backfill) -> None:
    """Wire the backfill on `pipeline`."""
    settings = Settings(**job.settings)
    fetched = (
        pipeline
        | "Read manifest" >> beam.io.ReadFromText(job.manifest)
        | "Spread lines" >> beam.Reshuffle()
        | "Read + hash" >> beam.ParDo(ReadImage(job))
    )
    looked_up = fetched | "Cache lookup" >> beam.ParDo(CacheLookup(job)).with_outputs(CacheLookup.HITS, main="misses")
    inferred = looked_up.misses | "RunInference" >> RunInference(
        ImgrecModelHandler(job.settings, settings.micro_batch_size)
    )
    rows = (
        (inferred, looked_up[CacheLookup.HITS])
        | "Outcomes" >> beam.Flatten()
        | "Group for the store" >> beam.BatchElements(min_batch_size=1, max_batch_size=500)
        | "Store results" >> beam.ParDo(StoreResults(job))
    )
    if job.parquet_dir:
        prefix = f"{job.parquet_dir.rstrip('/')}/{job.model.model_id}-v{job.model.version}"
        rows | "Write Parquet" >> beam.io.WriteToParquet(prefix, PARQUET_SCHEMA, file_name_suffix=".parquet")


@dataclass(frozen=True)
class DataflowOptions:
    """Where and on what a Dataflow run goes: Google Cloud project, region, a gs:// temp location, the worker
    container image (the project's image with onnxruntime-gpu for in-process GPU inference), and a GPU per worker
    as `TYPE[:COUNT]` (e.g. `nvidia-l4`), which also needs a GPU machine type (e.g. g2-standard-4)."""

    project: str
    region: str
    temp_location: str
    worker_image: str | None = None
    gpu: str | None = None
    machine_type: str | None = None
    max_workers: int | None = None


def pipeline_options(runner: str, extra: Sequence[str] = (), *, dataflow: DataflowOptions | None = None,
                     prism_location: str | None = None) -> PipelineOptions:
    """Beam options for `runner` (DirectRunner, PrismRunner, DataflowRunner), then any raw Beam flags in `extra`."""
    flags = [f"--runner={runner}"]
    if runner == "PrismRunner":
        # The Python SDK harness runs in this process; Prism's binary comes from `imgrec deploy tools` (Beam's own
        # default downloads it from the web).
        flags += ["--environment_type=LOOPBACK"] + ([f"--prism_location={prism_location}"] if prism_location else [])
    if runner == "DataflowRunner":
        if dataflow is None:
            raise ValueError("DataflowRunner needs a project, a region and a temp location")
        flags += [f"--project={dataflow.project}", f"--region={dataflow.region}",
                  f"--temp_location={dataflow.temp_location}"]
        if dataflow.worker_image:
            flags.append(f"--sdk_container_image={dataflow.worker_image}")
        if dataflow.machine_type:
            flags.append(f"--machine_type={dataflow.machine_type}")
        if dataflow.max_workers:
            flags.append(f"--max_num_workers={dataflow.max_workers}")
        if dataflow.gpu:
            kind, _, count = dataflow.gpu.partition(":")
            flags.append(f"--dataflow_service_options=worker_accelerator=type:{kind};count:{count or 1};"
                         "install-nvidia-driver")
    return PipelineOptions([*flags, *extra])


def choose_version(steps: BatchSteps, model_id: str, version: str | None) -> ModelVersion:
    """The registry row to backfill with: `version`, else the model's active version (never a canary draw)."""
    try:
        return find(model_id, version, rows=steps.ports.catalog.versions(model_id))
    except KeyError:
        raise RecognitionError("unknown_model", f"Model {model_id!r} has no {version or 'active'} version.") from None


def run(job: Backfill, options: PipelineOptions) -> dict[str, int]:
    """Run the backfill to the end; the counters of the run (images read, cache hits, failed, results stored)."""
    with beam.Pipeline(options=options) as pipeline:
        build(pipeline, job)
    result = pipeline.result
    counters = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS))["counters"]
    totals: dict[str, int] = {}
    for counter in counters:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + counter.committed
    return totals
