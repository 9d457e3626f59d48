"""`imgrec models` commands."""

from __future__ import annotations

import typer

models_app = typer.Typer(help="Build and list the model zoo.", no_args_is_help=True)
