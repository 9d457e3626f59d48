"""`imgrec models` commands: build the model zoo from registry packages, list the registry."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
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
