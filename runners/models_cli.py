"""`imgrec models` commands: build the model zoo from registry packages, route versions; the lifecycle commands
(`runners/lifecycle_cli.py`) join the same group."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from runners.lifecycle_cli import COMMANDS
from runners.model_build.build import build_models
from runners.model_build.env import ModelBuildError
from transforms.model_registry import load_registry
from transforms.settings import get_settings

models_app = typer.Typer(
    help="Build the model zoo; register, evaluate, route and retire versions.", no_args_is_help=True
)
for _name, _command in COMMANDS.items():
    models_app.command(_name)(_command)


@models_app.command("build")
def build(
    update_lock: Annotated[
        bool, typer.Option(help="Rebuild and record new sha256s in models/models.lock.json.")
    ] = False,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only these model_ids (repeatable).")] = None,
) -> None:
    """Build the ONNX models into the model store (cached; fails when a build differs from the lock)."""
    try:
        results = build_models(get_settings(), update_lock=update_lock, only=model or None)
    except ModelBuildError as exc:
        typer.secho(f"model build failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    for r in results:
        typer.echo(f"{r.status:7} {r.key:28} {r.seconds:7.1f}s  {r.directory}")


@models_app.command("route")
def route(
    model_id: Annotated[str, typer.Argument(help="The model to route.")],
    active: Annotated[str, typer.Option("--active", help="Version that serves the traffic.")],
    canary: Annotated[str | None, typer.Option("--canary", help="Canary version (omit to end a canary).")] = None,
    weight: Annotated[float, typer.Option("--weight", help="Share of traffic sent to the canary, in [0, 1].")] = 0.0,
) -> None:
    """Promote a version and set (or end) a canary: the registry table and the Redis route key together."""
    from transforms.composition import migrate, open_store, registry_router

    settings = get_settings()
    if not 0.0 <= weight <= 1.0:
        raise typer.BadParameter("weight must be in [0, 1]", param_hint="--weight")
    migrate(settings.resolved_database_url)
    store = open_store(settings)
    try:
        store.registry.seed(load_registry())
        known = {m.version for m in store.registry.versions(model_id)}
        for version in filter(None, (active, canary)):
            if version not in known:
                raise typer.BadParameter(f"{model_id} has no version {version!r} (known: {sorted(known)})")
        store.registry.set_route(model_id, active, canary, weight)
        router = registry_router(settings, store)
        router.promote(model_id, active)
        entry = router.set_canary(model_id, canary, weight)
        typer.echo(json.dumps(asdict(entry)))
    finally:
        store.close()


@models_app.command("triton-repo")
def triton_repo(
    dest: Annotated[Path, typer.Argument(help="Directory to write the Triton model repository into.")],
    gpu: Annotated[
        bool, typer.Option("--gpu", help='GPU hosts: backend "onnxruntime" with KIND_GPU instances.')
    ] = False,
) -> None:
    """Generate the Triton model repository from the registry (the stack does this for itself, CPU variant)."""
    from transforms.composition import write_triton_repository

    typer.echo(write_triton_repository(get_settings(), dest, gpu=gpu))
