"""`imgrec job` commands: the Flink batch job on the stack's session cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipelines.job_spec import JobOptions
from transforms.settings import get_settings

job_app = typer.Typer(help="Submit, cancel and inspect the Flink batch job.", no_args_is_help=True)


@job_app.command("submit")
def submit(
    fresh: Annotated[bool, typer.Option(help="Ignore retained checkpoints and savepoints (Kafka then resumes "
                                        "at the consumer group's committed offsets).")] = False,
    from_path: Annotated[Path | None, typer.Option("--from", help="Restore from this checkpoint/savepoint.")] = None,
    parallelism: Annotated[int | None, typer.Option(help="Subtasks of every operator (default: the cluster's "
                                                    "parallelism.default).")] = None,
    checkpoint_interval_ms: Annotated[int, typer.Option(help="Checkpoint interval (ms).")] = (
        JobOptions.checkpoint_interval_ms
    ),
) -> None:
    """Submit the job (resuming from the newest retained checkpoint); a running job is left as it is."""
    from pipelines.submit import submit_job

    options = JobOptions(parallelism=parallelism, checkpoint_interval_ms=checkpoint_interval_ms)
    job_id = submit_job(get_settings(), restore_from=from_path, fresh=fresh, options=options)
    typer.echo(job_id)


@job_app.command("cancel")
def cancel(savepoint: Annotated[bool, typer.Option(help="Stop with a savepoint, not a plain cancel.")] = False) -> None:
    """Cancel the job; its checkpoints are retained, so `imgrec job submit` resumes where it stopped."""
    from pipelines.submit import cancel_job

    location = cancel_job(get_settings(), savepoint=savepoint)
    typer.echo(location or "cancelled")


@job_app.command("status")
def status() -> None:
    """The job's state, id, last checkpoint and web UI link, as JSON."""
    from pipelines.submit import job_status

    current = job_status(get_settings())
    typer.echo(json.dumps(current.to_dict() if current else {"state": "NOT_SUBMITTED"}, indent=2))
    if current is None or current.state != "RUNNING":
        raise typer.Exit(1)


@job_app.command("keep")
def keep() -> None:
    """Keep the job running as last asked (`submit`/`cancel`): resubmit it from its newest retained checkpoint when
    the cluster lost it. Run by the stack's supervisor."""
    from pipelines.job_keeper import keep as run

    run(get_settings())


@job_app.command("schema")
def schema(
    results: Annotated[bool, typer.Option("--results", help="The results topic's messages instead.")] = False,
) -> None:
    """Print the JSON Schema of the batch-item message (what `transforms/schemas/batch-item-v1.schema.json` holds),
    or with --results of the results topic's messages (`transforms/schemas/result-v1.schema.json`)."""
    from transforms.messages import message_json_schema
    from transforms.results import result_json_schema

    typer.echo(json.dumps(result_json_schema() if results else message_json_schema(), indent=2))
