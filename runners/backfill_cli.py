"""`imgrec backfill`: re-score an archive of images with one model version on Apache Beam."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from transforms.settings import get_settings

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


class Runner(StrEnum):
    direct = "DirectRunner"
    prism = "PrismRunner"
    dataflow = "DataflowRunner"


def backfill_command(
    ctx: typer.Context,
    manifest: Annotated[str, typer.Argument(help="Text file (local or gs://) with one image reference a line: "
                                                 "file://, gs://, s3:// URIs or request:<request_id>.")],
    model: Annotated[str, typer.Option(help="Model id.")],
    version: Annotated[str | None, typer.Option(help="Model version (default: the active one).")] = None,
    runner: Annotated[Runner, typer.Option(help="Beam runner.")] = Runner.direct,
    parquet: Annotated[str | None, typer.Option(help="Folder (or gs:// prefix) for Parquet result files.")] = None,
    caller: Annotated[str, typer.Option(help="caller_id of the backfill's request rows.")] = "backfill",
    project: Annotated[str | None, typer.Option(help="Dataflow: Google Cloud project.")] = None,
    region: Annotated[str | None, typer.Option(help="Dataflow: region, e.g. us-central1.")] = None,
    temp_location: Annotated[str | None, typer.Option(help="Dataflow: gs:// folder for temporary files.")] = None,
    worker_image: Annotated[str | None, typer.Option(help="Dataflow: worker container image.")] = None,
    gpu: Annotated[str | None, typer.Option(help="Dataflow: GPU per worker, TYPE[:COUNT], e.g. nvidia-l4.")] = None,
    machine_type: Annotated[str | None, typer.Option(help="Dataflow: worker machine type.")] = None,
    max_workers: Annotated[int | None, typer.Option(help="Dataflow: most workers.")] = None,
) -> None:
    """Run MANIFEST's images through a model version (Beam RunInference) into the cache, the database and Parquet.

    Arguments after the options go to Beam as they are (e.g. `--direct_num_workers 2`).
    """
    from pipelines.beam_backfill import Backfill, DataflowOptions, choose_version, pipeline_options, run
    from runners.deploy.tools import prism_path
    from runners.stack.settings import StackSettings
    from transforms.batch_steps import BatchSteps
    from transforms.composition import build_ports, migrate
    from transforms.errors import RecognitionError
    from transforms.model_registry import load_registry

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url)
    dataflow = None
    if runner is Runner.dataflow:
        if not (project and region and temp_location):
            raise typer.BadParameter("DataflowRunner needs --project, --region and --temp-location")
        dataflow = DataflowOptions(project, region, temp_location, worker_image, gpu, machine_type, max_workers)
    prism = prism_path(StackSettings().cache_dir)
    if runner is Runner.prism and not prism.exists():
        raise typer.BadParameter(f"Prism is not built ({prism}): run `imgrec deploy tools`", param_hint="--runner")
    options = pipeline_options(runner.value, ctx.args, dataflow=dataflow, prism_location=str(prism))
    steps = BatchSteps(build_ports(settings))
    try:
        steps.ports.store.registry.seed(load_registry())
        chosen = choose_version(steps, model, version)
    except RecognitionError as exc:
        raise typer.BadParameter(exc.message, param_hint="--model/--version") from exc
    finally:
        steps.close()
    job = Backfill(manifest, chosen, settings.model_dump(mode="json"), parquet, caller)
    typer.echo(json.dumps({"model_id": chosen.model_id, "version": chosen.version, **run(job, options)}))
