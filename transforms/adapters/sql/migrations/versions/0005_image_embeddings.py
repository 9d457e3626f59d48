"""Image embeddings: one vector per (image_hash, model_id, model_version), the source of the similarity index.

Revision ID: 0005
Revises: 0003 (re-chained by the coordinator after 0004 results topic)
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"

Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "image_embeddings",
        sa.Column("image_hash", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", Ts, nullable=False),
    )
    op.create_index(
        "ix_image_embeddings_created", "image_embeddings", ["model_id", "model_version", "created_at"]
    )
    # The similarity search's catch-up reads a caller's requests by image hash.
    op.create_index("ix_inference_requests_caller_image", "inference_requests", ["caller_id", "image_hash"])


def downgrade() -> None:
    op.drop_index("ix_inference_requests_caller_image", "inference_requests")
    op.drop_index("ix_image_embeddings_created", "image_embeddings")
    op.drop_table("image_embeddings")
