"""`imgrec bootstrap` commands: prepare external services for a deployment (the chart runs them as Jobs)."""

from __future__ import annotations

from typing import Annotated

import typer

from transforms.settings import get_settings

bootstrap_app = typer.Typer(
    help="Prepare external services: database schema, model registry rows, Kafka topics (idempotent).",
    no_args_is_help=True,
)


@bootstrap_app.command()
def migrate() -> None:
    """Migrate the database schema to the newest revision (Alembic)."""
    from transforms.composition import migrate

    migrate(get_settings().resolved_database_url)
    typer.echo("database schema: at head")


@bootstrap_app.command()
def registry() -> None:
    """Insert the model registry's rows that the database lacks (a promotion made since is never undone)."""
    from transforms.composition import open_store
    from transforms.model_registry import load_registry

    store = open_store(get_settings())
    try:
        rows = load_registry()
        store.registry.seed(rows)
    finally:
        store.close()
    typer.echo(f"model registry: {len(rows)} versions seeded")


@bootstrap_app.command()
def topics(
    replication_factor: Annotated[int, typer.Option(help="Replicas of each new topic's partitions.")] = 1,
) -> None:
    """Create the batch, dead-letter and results topics, or grow the batch and results topics to
    IMGREC_BATCH_PARTITIONS."""
    from kafka import KafkaAdminClient

    from runners.kafka_topics import ensure_topics, wanted_topics

    settings = get_settings()
    if not settings.kafka_bootstrap:
        raise typer.BadParameter("IMGREC_KAFKA_BOOTSTRAP is not set")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="imgrec-bootstrap")
    try:
        done = ensure_topics(admin, wanted_topics(settings), replication_factor)
    finally:
        admin.close()
    for name, what in done.items():
        typer.echo(f"topic {name}: {what}")
