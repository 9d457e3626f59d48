"""`imgrec serve`: serve the API with uvicorn, in one process or several workers on one port."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from transforms.settings import Settings


def serve(
    host: str = typer.Option(None, help="Bind address (default: IMGREC_HOST)."),
    port: int = typer.Option(None, help="Port (default: IMGREC_PORT)."),
    workers: int = typer.Option(None, min=1, help="Worker processes (default: IMGREC_API_WORKERS)."),
) -> None:
    """Serve the REST API (embedded default unless IMGREC_* URLs point at real services)."""
    import uvicorn

    from api.app import create_app
    from transforms.settings import get_settings

    settings = get_settings()
    workers = workers or settings.api_workers
    address = {"host": host or settings.host, "port": port or settings.port, "log_level": "info"}
    if workers == 1:
        uvicorn.run(create_app(settings), **address)
        return
    prepare_metrics_dir(settings)
    # Workers are fresh interpreters: each builds the app from the same IMGREC_* environment.
    uvicorn.run("runners.serve_cli:app_from_environment", factory=True, workers=workers, **address)


def prepare_metrics_dir(settings: Settings) -> None:
    """An empty directory for the workers' metric files (samples of an earlier run would be added in)."""
    from api.routes.health import MULTIPROC_ENV

    path = settings.var_dir / "prometheus-multiproc"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def app_from_environment() -> FastAPI:
    """The app of one worker process."""
    from api.app import create_app
    from transforms.settings import get_settings

    return create_app(get_settings())
