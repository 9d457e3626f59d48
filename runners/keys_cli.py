"""`imgrec keys` commands."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@keys_app.command("create")
def create(caller: str = typer.Option(..., "--caller", help="The caller_id the key acts as.")) -> None:
    """Create an API key for CALLER and print it (only its hash is stored)."""
    from transforms.composition import migrate, open_store
    from transforms.settings import get_settings

    settings = get_settings()
    migrate(settings.resolved_database_url)
    store = open_store(settings)
    try:
        typer.echo(store.create_api_key(caller))
    finally:
        store.close()


@keys_app.command("limits")
def limits(
    key: str = typer.Option(..., "--key", envvar="IMGREC_API_KEY", help="The API key whose limits to set."),
    rate_per_s: float | None = typer.Option(None, help="Sync requests per second (sustained)."),
    burst: int | None = typer.Option(None, help="Sync requests at once above the rate."),
    max_concurrency: int | None = typer.Option(None, help="Sync requests in flight per API process."),
    max_batch_items_in_flight: int | None = typer.Option(None, help="Unfinished batch items of the caller."),
) -> None:
    """Set a key's admission limits (the ones not given go back to the settings' defaults); takes effect within
    30 s in running API processes."""
    import hashlib

    from transforms.composition import open_store
    from transforms.settings import get_settings

    store = open_store(get_settings())
    try:
        found = store.set_key_limits(
            hashlib.sha256(key.encode()).hexdigest(), rate_per_s=rate_per_s, burst=burst,
            max_concurrency=max_concurrency, max_batch_items_in_flight=max_batch_items_in_flight,
        )
    finally:
        store.close()
    if not found:
        typer.echo("no such key", err=True)
        raise typer.Exit(1)
    typer.echo("limits set")
