"""`imgrec batch` commands: submit files or URL lists through the API and follow their progress."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runners.api_client import ApiClient, ApiError, items_from_paths

batch_app = typer.Typer(help="Submit batches and follow their progress.", no_args_is_help=True)
console = Console(stderr=True)

API_URL = typer.Option("http://127.0.0.1:8080", "--api-url", envvar="IMGREC_API_URL", help="Base URL of the API.")
API_KEY = typer.Option(None, "--api-key", envvar="IMGREC_API_KEY", help="API key (Bearer).")


@batch_app.command("submit")
def submit(
    paths: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Image files, or .txt files of URLs."),
    model: str = typer.Option(..., "--model", "-m", help="model_id for every item."),
    wait: bool = typer.Option(False, "--wait", help="Follow progress until the batch ends."),
    callback_url: str = typer.Option(None, "--callback-url", help="Webhook called when the batch ends."),
    api_url: str = API_URL,
    api_key: str = API_KEY,
) -> None:
    """Submit a batch and print its id (and, with --wait, a progress bar and the final summary)."""
    client = ApiClient(api_url, api_key)
    try:
        accepted = client.submit_batch(items_from_paths(paths, model), callback_url)
        for bad in accepted["rejected"]:
            console.print(f"[yellow]item {bad['index']} rejected[/]: {bad['code']}: {bad['message']}")
        console.print(
            f"batch {accepted['batch_id']}: {accepted['accepted_count']} items, "
            f"about {accepted['estimated_completion_seconds']:.0f} s"
        )
        typer.echo(accepted["batch_id"])
        if wait:
            final = _follow(client, accepted["batch_id"], accepted["accepted_count"])
            typer.echo(json.dumps({k: final[k] for k in ("status", "completed_count", "failed_count", "total_count")}))
    except ApiError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        client.close()


def _follow(client: ApiClient, batch_id: str, total: int, poll_s: float = 0.5) -> dict:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(batch_id[:12], total=total)
        while True:
            status = client.batch_status(batch_id, limit=1)
            progress.update(task, completed=status["completed_count"] + status["failed_count"])
            if status["status"] not in ("pending", "processing"):
                return status
            time.sleep(poll_s)


@batch_app.command("status")
def status(
    batch_id: str,
    results: bool = typer.Option(False, "--results", help="Print every result (JSON lines) when done."),
    api_url: str = API_URL,
    api_key: str = API_KEY,
) -> None:
    """Print a batch's progress; with --results, its results page by page."""
    client = ApiClient(api_url, api_key)
    try:
        body = client.batch_status(batch_id, limit=1000)
        summary = {k: body[k] for k in ("batch_id", "status", "completed_count", "failed_count", "total_count")}
        typer.echo(json.dumps(summary))
        while results and body.get("results") is not None:
            for item in body["results"]:
                typer.echo(json.dumps(item))
            if body.get("next_offset") is None:
                break
            body = client.batch_status(batch_id, offset=body["next_offset"], limit=1000)
    except ApiError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        client.close()
