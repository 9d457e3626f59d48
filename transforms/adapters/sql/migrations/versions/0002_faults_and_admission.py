"""Webhook claims (lease + delivery id), batch idempotency keys, per-key admission limits.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("webhook_outbox") as table:
        # A replica claims a row for a lease before delivering it; the id lets receivers drop repeats.
        table.add_column(sa.Column("delivery_id", sa.String(64)))
        table.add_column(sa.Column("lease_owner", sa.String(64)))
        table.add_column(sa.Column("lease_until", Ts))
    with op.batch_alter_table("batches") as table:
        table.add_column(sa.Column("idempotency_key", sa.String(255)))
        table.add_column(sa.Column("request_fingerprint", sa.String(64)))
        table.create_unique_constraint("uq_batches_caller_idempotency_key", ["caller_id", "idempotency_key"])
    with op.batch_alter_table("api_keys") as table:
        # NULL: the settings' default applies.
        table.add_column(sa.Column("rate_per_s", sa.Float))
        table.add_column(sa.Column("burst", sa.Integer))
        table.add_column(sa.Column("max_concurrency", sa.Integer))
        table.add_column(sa.Column("max_batch_items_in_flight", sa.Integer))
    op.create_index("ix_inference_requests_caller_status", "inference_requests", ["caller_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_inference_requests_caller_status", "inference_requests")
    with op.batch_alter_table("api_keys") as table:
        for name in ("max_batch_items_in_flight", "max_concurrency", "burst", "rate_per_s"):
            table.drop_column(name)
    with op.batch_alter_table("batches") as table:
        table.drop_constraint("uq_batches_caller_idempotency_key", type_="unique")
        table.drop_column("request_fingerprint")
        table.drop_column("idempotency_key")
    with op.batch_alter_table("webhook_outbox") as table:
        for name in ("lease_until", "lease_owner", "delivery_id"):
            table.drop_column(name)
