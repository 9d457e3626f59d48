"""`imgrec stack` commands."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from runners.stack.components.base import ComponentError
from runners.stack.settings import StackSettings

if TYPE_CHECKING:
    from runners.stack.stack import Stack

stack_app = typer.Typer(help="Start, stop and inspect the local stack of real services.", no_args_is_help=True)
console = Console()


def _stack() -> Stack:
    # Imported here: `imgrec --help` should not load every service's client library.
    from runners.stack.stack import Stack

    return Stack(StackSettings())


@stack_app.command()
def install() -> None:
    """Install what the stack needs: PostgreSQL and Redis (apt), the Kafka broker and connector jars (Maven)."""
    from runners.stack.install import install as run_install

    try:
        run_install(StackSettings(), say=console.print)
    except (subprocess.CalledProcessError, OSError, RuntimeError) as exc:
        console.print(f"[red]stack install failed:[/red] {exc}")
        raise typer.Exit(1) from exc


@stack_app.command()
def up(
    only: Annotated[list[str] | None, typer.Option("--only", help="Start just these components (repeatable).")] = None,
) -> None:
    """Start the stack (idempotent: running components are kept) and wait until each is ready."""
    stack = _stack()
    began = time.monotonic()
    try:
        timings = stack.start(only) if only else stack.up()
    except (ComponentError, KeyError) as exc:
        console.print(f"[red]stack up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _print_status(stack.status(), timings)
    for note in stack.notes:
        console.print(f"[yellow]{note}[/yellow]")
    s = stack.settings
    console.print(f"ready in {time.monotonic() - began:.1f} s. Console: {s.api_url}/  API docs: {s.api_url}/docs  "
                  f"Flink UI: {s.flink_rest_url}  Prometheus: {s.prometheus_url}")


@stack_app.command()
def down(
    only: Annotated[list[str] | None, typer.Option("--only", help="Stop just these components (repeatable).")] = None,
) -> None:
    """Stop every process the stack started (process groups), and nothing else."""
    stopped = _stack().stop(only)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per component.")] = False) -> None:
    """Each component's pid, URL, health and how often the supervisor restarted it."""
    rows = _stack().status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_status(rows, {})


@stack_app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Component name, as `imgrec stack status` lists it.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines from the end.")] = 50,
) -> None:
    """Print the end of a component's log."""
    try:
        component = _stack()[name]
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"# {component.log_path}", style="dim")
    typer.echo(component.log_tail(lines))


@stack_app.command()
def env() -> None:
    """`export IMGREC_...=...` lines that point a shell, the CLI or a client at the running stack."""
    for key, value in StackSettings().service_env().items():
        typer.echo(f"export {key}={shlex.quote(value)}")


def _print_status(rows: list[dict], timings: dict[str, float]) -> None:
    table = Table("component", "pid", "url", "healthy", "restarts", "start-up s")
    for row in rows:
        seconds = timings.get(row["name"])
        table.add_row(row["name"], str(row["pid"] or "-"), row["url"],
                      "[green]yes[/green]" if row["healthy"] else "[red]no[/red]",
                      str(row["restarts"]) if row["restarts"] else "[dim]0[/dim]",
                      f"{seconds:.1f}" if seconds is not None else "")
    console.print(table)
    if "flink-job" in timings:
        console.print(f"batch job submitted in {timings['flink-job']:.1f} s")
