"""`imgrec batch` commands."""

from __future__ import annotations

import typer

batch_app = typer.Typer(help="Submit batches and follow their progress.", no_args_is_help=True)
