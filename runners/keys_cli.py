"""`imgrec keys` commands: create, list and revoke API keys and set their limits (a key is shown once, at creation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from transforms.settings import get_settings
from transforms.store import Store

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@contextmanager
def _store() -> Iterator[Store]:
    from transforms.composition import migrate, open_store

    settings = get_settings()
    migrate(settings.resolved_database_url)
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


@keys_app.command("create")
def create(caller: str = typer.Option(..., "--caller", help="The caller_id the key acts as.")) -> None:
    """Create an API key for CALLER and print it (only its hash is stored)."""
    with _store() as store:
        typer.echo(store.keys.create(caller))


@keys_app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False) -> None:
    """Every key's id, caller, creation and revocation time; never the key itself."""
    from transforms.keys import key_id

    with _store() as store:
        rows = [
            {
                "id": key_id(k.key_hash),
                "caller_id": k.caller_id,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in store.keys.all()
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['caller_id']:24} created {r['created_at']}  {_revoked(r['revoked_at'])}")


@keys_app.command("revoke")
def revoke(
    key_or_id: Annotated[str, typer.Argument(help="The key itself, or its id from `imgrec keys list`.")],
) -> None:
    """Revoke a key; every API process refuses it within IMGREC_KEY_CACHE_TTL_S seconds."""
    from transforms.keys import find_key, key_id

    settings = get_settings()
    with _store() as store:
        key = find_key(store.keys.all(), key_or_id)
        if key is None:
            typer.secho("no API key has that value or id (see `imgrec keys list`)", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        if not store.keys.revoke(key.key_hash):
            typer.echo(f"{key_id(key.key_hash)} (caller {key.caller_id}) was already revoked")
            return
    typer.echo(
        f"revoked {key_id(key.key_hash)} (caller {key.caller_id}); running API processes refuse it within "
        f"{settings.key_cache_ttl_s:g} s"
    )


@keys_app.command("limits")
def limits(
    key_or_id: Annotated[str, typer.Argument(help="The key itself, or its id from `imgrec keys list`.")],
    rate_per_s: float | None = typer.Option(None, help="Sync requests per second (sustained)."),
    burst: int | None = typer.Option(None, help="Sync requests at once above the rate."),
    max_concurrency: int | None = typer.Option(None, help="Sync requests in flight per API process."),
    max_batch_items_in_flight: int | None = typer.Option(None, help="Unfinished batch items of the caller."),
) -> None:
    """Set a key's admission limits (the ones not given go back to the settings' defaults); running API processes
    apply them within IMGREC_KEY_CACHE_TTL_S seconds."""
    from transforms.keys import find_key, key_id

    with _store() as store:
        key = find_key(store.keys.all(), key_or_id)
        if key is None or not store.keys.set_limits(
            key.key_hash, rate_per_s=rate_per_s, burst=burst, max_concurrency=max_concurrency,
            max_batch_items_in_flight=max_batch_items_in_flight,
        ):
            typer.secho("no API key has that value or id (see `imgrec keys list`)", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
    typer.echo(f"limits set for {key_id(key.key_hash)} (caller {key.caller_id})")


def _revoked(when: str | None) -> str:
    return f"REVOKED {when}" if when else "active"
