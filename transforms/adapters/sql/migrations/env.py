"""Alembic environment: the URL and connection come from `transforms.adapters.sql.migrations.upgrade`.

`target_metadata` is the tables the store uses, so `alembic check` (and the migration test) fails when a table
changes without a migration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from transforms.adapters.sql.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
