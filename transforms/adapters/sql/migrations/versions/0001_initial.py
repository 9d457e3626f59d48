"""Initial schema: registry, callers and keys, batches, requests, results, webhook outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_registry",
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("handler", sa.String(64), nullable=False),
        sa.Column("artifact_s3_path", sa.Text, nullable=False),
        sa.Column("framework", sa.String(32), nullable=False),
        sa.Column("input_shape", Json, nullable=False),
        sa.Column("default_confidence_threshold", sa.Float, nullable=False),
        sa.Column("min_label_count", sa.Integer, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("canary_weight", sa.Float, nullable=False),
        sa.Column("extra", Json, nullable=False),
        sa.Column("created_at", Ts, nullable=False),
    )
    op.create_table(
        "callers",
        sa.Column("caller_id", sa.String(128), primary_key=True),
        sa.Column("webhook_secret", sa.String(128), nullable=False),
        sa.Column("created_at", Ts, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("caller_id", sa.String(128), sa.ForeignKey("callers.caller_id"), nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("revoked_at", Ts),
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("caller_id", sa.String(128), nullable=False, index=True),
        sa.Column("total_count", sa.Integer, nullable=False),
        sa.Column("rejected", Json, nullable=False),
        sa.Column("callback_url", sa.Text),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("completed_at", Ts),
    )
    op.create_table(
        "inference_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("caller_id", sa.String(128), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("image_hash", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.batch_id")),
        sa.Column("item_index", sa.Integer),
        sa.Column("image_uri", sa.Text),
        sa.Column("confidence_threshold", sa.Float),
        sa.Column("min_label_count", sa.Integer),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("submitted_at", Ts, nullable=False),
        sa.Column("completed_at", Ts),
    )
    op.create_index("ix_inference_requests_batch", "inference_requests", ["batch_id", "status"])
    op.create_index("ix_inference_requests_caller", "inference_requests", ["caller_id", "submitted_at"])
    op.create_table(
        "inference_results",
        sa.Column("request_id", sa.String(64), sa.ForeignKey("inference_requests.request_id"), primary_key=True),
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("labels", Json, nullable=False),
        sa.Column("threshold_applied", sa.Float),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("raw_output_path", sa.Text),
        sa.Column("created_at", Ts, nullable=False),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.batch_id"), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Ts, nullable=False),
        sa.Column("delivered_at", Ts),
        sa.Column("gave_up_at", Ts),
        sa.Column("created_at", Ts, nullable=False),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("webhook_outbox.batch_id"), nullable=False, index=True),
        sa.Column("attempted_at", Ts, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    for name in (
        "webhook_attempts",
        "webhook_outbox",
        "inference_results",
        "inference_requests",
        "batches",
        "api_keys",
        "callers",
        "model_registry",
    ):
        op.drop_table(name)
