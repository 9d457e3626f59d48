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
