"""`imgrec keys` commands."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@keys_app.command("create")
def create(caller: str = typer.Option(..., "--caller", help="The caller_id the key acts as.")) -> None:
    """Create an API key for CALLER and print it (only its hash is stored)."""
    from transforms.settings import get_settings
    from transforms.store import Store
    from transforms.store.migrations import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    store = Store.from_url(settings.resolved_database_url)
    try:
        typer.echo(store.create_api_key(caller))
    finally:
        store.close()
