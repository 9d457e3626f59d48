"""`imgrec stack` commands."""

from __future__ import annotations

import typer

stack_app = typer.Typer(help="Start, stop and inspect the local stack of real services.", no_args_is_help=True)
