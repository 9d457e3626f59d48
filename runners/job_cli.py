"""`imgrec job` commands."""

from __future__ import annotations

import typer

job_app = typer.Typer(help="Submit, cancel and inspect the Flink batch job.", no_args_is_help=True)
