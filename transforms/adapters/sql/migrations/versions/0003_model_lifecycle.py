"""Model lifecycle: version states and registration facts, evaluations, audit events, gate rules; an index for the
most requested images of a model.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("model_registry") as table:
        table.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="registered"))
        table.add_column(sa.Column("loaded", sa.Boolean, nullable=False, server_default=sa.true()))
        table.add_column(sa.Column("source_uri", sa.Text))
        table.add_column(sa.Column("artifact_sha256", sa.String(64)))
        table.add_column(sa.Column("registered_by", sa.String(128)))
    op.create_table(
        "model_evaluations",
        sa.Column("evaluation_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("baseline_version", sa.String(64)),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("report", Json, nullable=False),
        sa.Column("summary_md", sa.Text, nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("created_by", sa.String(128)),
    )
    op.create_index("ix_model_evaluations_version", "model_evaluations", ["model_id", "version", "evaluation_id"])
    op.create_table(
        "model_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("from_version", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", Ts, nullable=False),
        sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("model_evaluations.evaluation_id")),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("details", Json, nullable=False),
    )
    op.create_index("ix_model_events_model", "model_events", ["model_id", "event_id"])
    op.create_table(
        "model_gates",
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("rules", Json, nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.Column("updated_by", sa.String(128)),
    )
    op.create_index("ix_inference_requests_model", "inference_requests", ["model_id", "submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_inference_requests_model", "inference_requests")
    op.drop_table("model_gates")
    op.drop_table("model_events")
    op.drop_table("model_evaluations")
    with op.batch_alter_table("model_registry") as table:
        for column in ("registered_by", "artifact_sha256", "source_uri", "loaded", "state"):
            table.drop_column(column)
