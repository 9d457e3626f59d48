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
    MetaData,
    String,
    Table,
    Text,
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
