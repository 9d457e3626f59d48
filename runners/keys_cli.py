"""`imgrec keys` commands."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
