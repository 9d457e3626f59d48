"""The web console: static files at `/` (plain ES modules, no build step) and the model list for its picker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import caller_id

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
ASSETS_PATH = "/console"

router = APIRouter(include_in_schema=False)


class ConsoleModel(BaseModel):
    """What the console's model picker needs of one active model."""

    model_id: str
    version: str
    default_confidence_threshold: float
    min_label_count: int


@router.get("/")
def index() -> FileResponse:
    """The console's page."""
    return FileResponse(CONSOLE_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get(f"{ASSETS_PATH}/models")
async def models(request: Request, _: Annotated[str, Depends(caller_id)]) -> list[ConsoleModel]:
    """Active models from the registry table, for the picker when the API has no `GET /v1/models`."""
    rows = await run_in_threadpool(request.app.state.services.store.registry.versions)
    return [
        ConsoleModel(
            model_id=row.model_id,
            version=row.version,
            default_confidence_threshold=row.default_confidence_threshold,
            min_label_count=row.min_label_count,
        )
        for row in rows
        if row.is_active
    ]


def static_files() -> StaticFiles:
    """The console's scripts and styles, mounted under ASSETS_PATH."""
    return StaticFiles(directory=CONSOLE_DIR)
