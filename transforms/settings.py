"""One settings object for the whole service; every field is an `IMGREC_*` environment variable.

With nothing configured the embedded default is used (SQLite, in-process cache, in-process ONNX Runtime,
in-process queue and worker threads). Configuring a URL switches that port to the real service.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Service configuration. Field docs are the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="IMGREC_", env_file=".env", extra="ignore")

    # --- where things live ---
    var_dir: Path = Field(REPO_ROOT / "var", description="Data, logs, blobs and the model store.")
    model_store: Path | None = Field(None, description="Built ONNX models (default: <var_dir>/models).")

    # --- ports: empty means the embedded default ---
    database_url: str | None = Field(
        None, description="SQLAlchemy URL, e.g. postgresql+psycopg://u@127.0.0.1:5432/imgrec (default: SQLite)."
    )
    redis_url: str | None = Field(None, description="redis://host:port/db (default: in-process cache).")
    triton_url: str | None = Field(None, description="Triton gRPC host:port (default: in-process ONNX Runtime).")
    kafka_bootstrap: str | None = Field(None, description="Kafka bootstrap servers (default: in-process queue).")
    flink_rest_url: str | None = Field(None, description="Flink REST URL of the session cluster.")
    blob_root: str | None = Field(None, description="Blob store root URI: file://, s3:// or gs:// (default: var).")
    artifact_root: Path | None = Field(
        None, description="Registered model versions, one directory each (default: <var_dir>/artifacts)."
    )
    triton_repository: Path | None = Field(
        None, description="Triton's model repository, rewritten by the model lifecycle (Triton runs with "
        "--model-control-mode=explicit); needed with IMGREC_TRITON_URL to register, promote or retire versions."
    )

    # --- API ---
    host: str = Field("127.0.0.1", description="API bind address.")
    port: int = Field(8080, description="API port.")
    auth_enabled: bool = Field(True, description="Require `Authorization: Bearer <key>`; off logs a warning.")
    dev_api_key: str | None = Field(None, description="Development key created at start of the embedded default.")
    key_cache_ttl_s: float = Field(
        30.0, ge=0, le=60, description="How long an API process trusts a key it has seen: a revoked key stops "
        "working within this time (at most a minute)."
    )
    sync_max_bytes: int = Field(2 * 1024 * 1024, description="Largest image on the sync path (bytes).")
    batch_max_bytes: int = Field(20 * 1024 * 1024, description="Largest single image in a batch (bytes).")
    max_pixels: int = Field(40_000_000, description="Decompression-bomb guard: most pixels in one image.")
    batch_max_items: int = Field(10_000, description="Most items in one batch request.")
    request_rows_linger_ms: int = Field(
        20, description="Sync request rows are written in the background, batched over at most this long."
    )
    request_rows_max_batch: int = Field(500, description="Most sync request rows in one background write.")

    keep_sync_images: bool = Field(
        True, description="Keep a content-addressed copy of each image the sync path infers (blob store, images/), "
        "so a warm promotion can compute a new version's results for the most requested images."
    )

    # --- admission control (per API key: a key's own row in `api_keys` overrides these defaults) ---
    rate_limit_per_s: float = Field(50.0, description="Sync requests per second one API key may send (sustained).")
    rate_limit_burst: int = Field(100, description="Sync requests one API key may send at once above the rate.")
    max_concurrency_per_key: int = Field(16, description="Sync requests of one API key in flight in one API process.")
    max_batch_items_in_flight: int = Field(
        100_000, description="Batch items of one caller not yet finished; a batch that would exceed it gets 429."
    )
    sync_concurrency: int = Field(16, description="Sync recognitions running at once in one API process.")
    sync_queue_size: int = Field(
        64, description="Sync requests waiting for a running slot; beyond it a request is shed with 503 overloaded."
    )
    sync_queue_timeout_s: float = Field(
        5.0, description="Longest wait of a sync request for a running slot before it is shed with 503 overloaded."
    )

    # --- URL fetch (SSRF guard) ---
    fetch_connect_timeout_s: float = Field(3.0, description="Image URL connect timeout.")
    fetch_read_timeout_s: float = Field(10.0, description="Image URL read timeout.")
    fetch_max_redirects: int = Field(3, description="Most redirects followed for an image URL.")
    fetch_allow_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts or CIDRs allowed even though private/loopback (JSON list), e.g. ["127.0.0.1"].',
    )

    # --- cache and routing ---
    cache_ttl_s: int = Field(7 * 24 * 3600, description="Result cache TTL (seconds).")
    cache_max_entries: int = Field(100_000, description="Entries kept by the in-process cache.")
    active_version_ttl_s: int = Field(60, description="TTL of the Redis key model:active:{model_id}.")

    # --- inference ---
    triton_timeout_s: float = Field(30.0, description="Timeout of one Triton request.")
    triton_channel_max_age_s: float = Field(
        0.0, description="Re-open the Triton gRPC channel this often (s), so servers added behind a DNS name get "
        "calls (Kubernetes: 60); 0: never."
    )
    dependency_retry_s: float = Field(
        30.0,
        description="How long a batch step retries an unavailable Triton, database or blob store (backoff) before "
        "the error goes to the engine (Flink restarts the job).",
    )
    micro_batch_size: int = Field(32, description="Images per inference call in the batch path.")
    micro_batch_max_wait_ms: int = Field(50, description="Longest wait to fill a micro-batch.")
    micro_batch_shards: int = Field(
        1, description="Micro-batch keys per model version in the batch job: a version's reads, decodes, "
        "preprocessing and Triton calls spread over that many subtasks (by image hash); set it to the job's "
        "parallelism when there is more than one TaskManager core per Triton."
    )
    preprocess_threads: int = Field(
        2, description="Threads that read, decode and preprocess the images of one micro-batch in the batch path "
        "(PIL and numpy release the GIL); one per core is the rule."
    )
    batch_route_memo_s: float = Field(
        1.0, description="How long each batch-job operator keeps a model's route (s) instead of reading it per item; "
        "a promotion reaches the job within this (0: read per item)."
    )
    ort_threads: int = Field(0, description="ONNX Runtime intra-op threads (0: let it choose).")
    ort_spinning: bool = Field(
        False,
        description="Let ONNX Runtime's idle intra-op threads spin (in process and in Triton): a little lower latency "
        "on a dedicated host, but it burns the CPU that the other services of a shared host need.",
    )
    ort_providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description='ONNX Runtime execution providers, best first (JSON list), e.g. ["CUDAExecutionProvider", '
        '"CPUExecutionProvider"] on GPU hosts.',
    )

    # --- batch path ---
    batch_topic: str = Field("imgrec.batch.v1", description="Kafka topic of batch items.")
    dead_letter_topic: str = Field("imgrec.batch.dlq", description="Kafka topic of rejected messages.")
    results_topic: str = Field(
        "imgrec.results.v1", description="Kafka topic of item results and batch completion events (exactly once)."
    )
    results_delivery: Literal["exactly-once", "at-least-once"] = Field(
        "exactly-once",
        description="Guarantee of the job's results topic: exactly-once (Kafka transactions, visible to read_committed "
        "consumers at each checkpoint) or at-least-once (visible at once; a replay repeats answers).",
    )
    sync_results_to_topic: bool = Field(
        False, description="Also write the sync path's answers to the results topic (at least once, by the API)."
    )
    batch_partitions: int = Field(6, description="Partitions of the batch topic (and of the results topic).")
    batch_workers: int = Field(2, description="Worker threads of the embedded batch runner.")
    api_workers: int = Field(
        1,
        ge=1,
        description="API worker processes of `imgrec serve` (uvicorn workers on one port; about one per core). With "
        "more than one, each keeps its own in-process state (the embedded cache and queue when no Redis or Kafka is "
        "set), and /metrics adds up every worker's (Prometheus multiprocess mode).",
    )
    batch_metrics_port: int | None = Field(
        None, description="Port where the Flink job's Python workers serve Prometheus metrics (none: off)."
    )
    webhook_max_attempts: int = Field(6, description="Delivery attempts of a completion webhook.")
    stall_after_s: float = Field(
        120.0,
        description="A batch with unfinished items that makes no progress this long is reported stuck (metric "
        "imgrec_batches_stalled and a log line naming the stage).",
    )
    job_stuck_start_s: float = Field(
        120.0,
        gt=0,
        description="The job keeper cancels a RUNNING batch job whose tasks are still opening (INITIALIZING) this "
        "long after it (re)started, logging where they wait; the cluster replaces the TaskManager and the keeper "
        "resubmits the job from its newest checkpoint.",
    )

    # --- embeddings and similarity search ---
    embedding_model_id: str = Field(
        "image-embedding", description="The model whose vectors similarity search and near-duplicate hints use."
    )
    near_duplicate_threshold: float = Field(
        0.85, ge=0, le=1, description="Cosine similarity at or above which an earlier image is a near duplicate."
    )
    near_duplicate_max: int = Field(5, ge=1, description="Most near duplicates listed in one recognition answer.")
    similarity_index_dtype: str = Field(
        "f16", description="Scalar type of the similarity index's vectors: f32, f16 (half the memory) or i8."
    )
    similarity_save_interval_s: float = Field(
        30.0, gt=0, description="How often changed similarity indexes are written to the blob store."
    )

    @property
    def resolved_model_store(self) -> Path:
        """The model store directory."""
        return self.model_store or self.var_dir / "models"

    @property
    def resolved_artifact_root(self) -> Path:
        """Where registered versions' artifacts live."""
        return self.artifact_root or self.var_dir / "artifacts"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, SQLite under var/ when none is configured."""
        return self.database_url or f"sqlite:///{self.var_dir / 'imgrec.db'}"

    @property
    def resolved_blob_root(self) -> str:
        """The blob store root URI."""
        return self.blob_root or (self.var_dir / "blobs").as_uri()


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
