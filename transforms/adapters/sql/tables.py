"""Table definitions (SQLAlchemy Core), portable between PostgreSQL and SQLite."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
Json = JSON().with_variant(JSONB(), "postgresql")
Ts = DateTime(timezone=True)

model_registry = Table(
    "model_registry",
    metadata,
    Column("model_id", String(128), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("handler", String(64), nullable=False),
    Column("artifact_s3_path", Text, nullable=False),  # the design's name; holds any URI (file://, s3://)
    Column("framework", String(32), nullable=False),
    Column("input_shape", Json, nullable=False),
    Column("default_confidence_threshold", Float, nullable=False),
    Column("min_label_count", Integer, nullable=False),
    Column("is_active", Boolean, nullable=False, default=False),
    Column("canary_weight", Float, nullable=False, default=0.0),
    Column("extra", Json, nullable=False, default=dict),
    Column("created_at", Ts, nullable=False),
    # The lifecycle (issue 11): stored state (active/canary follow from the route), whether the serving back end
    # should hold the version, and how it was registered.
    Column("state", String(16), nullable=False, default="registered", server_default="registered"),
    Column("loaded", Boolean, nullable=False, default=True, server_default=true()),
    Column("source_uri", Text),
    Column("artifact_sha256", String(64)),
    Column("registered_by", String(128)),
)

model_evaluations = Table(
    "model_evaluations",
    metadata,
    Column("evaluation_id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("baseline_version", String(64)),
    Column("passed", Boolean, nullable=False),
    Column("report", Json, nullable=False),
    Column("summary_md", Text, nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("created_by", String(128)),
    Index("ix_model_evaluations_version", "model_id", "version", "evaluation_id"),
)

model_events = Table(
    "model_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(128), nullable=False),
    Column("version", String(64)),
    Column("from_version", String(64)),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at", Ts, nullable=False),
    Column("evaluation_id", Integer, ForeignKey("model_evaluations.evaluation_id")),
    Column("forced", Boolean, nullable=False, default=False),
    Column("details", Json, nullable=False, default=dict),
    Index("ix_model_events_model", "model_id", "event_id"),
)

model_gates = Table(
    "model_gates",
    metadata,
    Column("model_id", String(128), primary_key=True),
    Column("rules", Json, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Column("updated_by", String(128)),
)

callers = Table(
    "callers",
    metadata,
    Column("caller_id", String(128), primary_key=True),
    Column("webhook_secret", String(128), nullable=False),
    Column("created_at", Ts, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),  # sha256 of the key; the key itself is never stored
    Column("caller_id", String(128), ForeignKey("callers.caller_id"), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("revoked_at", Ts),
    # Admission limits of this key; NULL means the settings' default.
    Column("rate_per_s", Float),
    Column("burst", Integer),
    Column("max_concurrency", Integer),
    Column("max_batch_items_in_flight", Integer),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("caller_id", String(128), nullable=False, index=True),
    Column("total_count", Integer, nullable=False),
    Column("rejected", Json, nullable=False, default=list),
    Column("callback_url", Text),
    Column("created_at", Ts, nullable=False),
    Column("completed_at", Ts),
    # A client's retry of POST /v1/recognize/batch with the same Idempotency-Key finds this batch.
    Column("idempotency_key", String(255)),
    Column("request_fingerprint", String(64)),
    UniqueConstraint("caller_id", "idempotency_key", name="uq_batches_caller_idempotency_key"),
)

inference_requests = Table(
    "inference_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("caller_id", String(128), nullable=False),
    Column("model_id", String(128), nullable=False),
    Column("image_hash", String(64)),
    Column("status", String(16), nullable=False),  # pending -> processing -> done | failed
    Column("batch_id", String(64), ForeignKey("batches.batch_id")),
    Column("item_index", Integer),
    Column("image_uri", Text),
    Column("confidence_threshold", Float),
    Column("min_label_count", Integer),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("submitted_at", Ts, nullable=False),
    Column("completed_at", Ts),
    Index("ix_inference_requests_batch", "batch_id", "status"),
    Index("ix_inference_requests_caller", "caller_id", "submitted_at"),
    Index("ix_inference_requests_model", "model_id", "submitted_at"),  # popular images of a model (warm-up)
    Index("ix_inference_requests_caller_status", "caller_id", "status"),
    Index("ix_inference_requests_caller_image", "caller_id", "image_hash"),
)

inference_results = Table(
    "inference_results",
    metadata,
    Column("request_id", String(64), ForeignKey("inference_requests.request_id"), primary_key=True),
    Column("model_id", String(128), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("labels", Json, nullable=False),
    Column("threshold_applied", Float),
    Column("cache_hit", Boolean, nullable=False, default=False),
    Column("raw_output_path", Text),
    Column("created_at", Ts, nullable=False),
)

image_embeddings = Table(
    "image_embeddings",
    metadata,
    Column("image_hash", String(64), primary_key=True),
    Column("model_id", String(128), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("dimension", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # little-endian float32, L2-normalised
    Column("created_at", Ts, nullable=False),
    Index("ix_image_embeddings_created", "model_id", "model_version", "created_at"),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("batch_id", String(64), ForeignKey("batches.batch_id"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Ts, nullable=False),
    Column("delivered_at", Ts),
    Column("gave_up_at", Ts),
    Column("created_at", Ts, nullable=False),
    # Sent as X-Imgrec-Delivery-Id with every attempt, so a receiver can drop a repeat.
    Column("delivery_id", String(64)),
    # The replica delivering it now; another may take it over once the lease has run out.
    Column("lease_owner", String(64)),
    Column("lease_until", Ts),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), ForeignKey("webhook_outbox.batch_id"), nullable=False, index=True),
    Column("attempted_at", Ts, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
)
