"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])
# Set (by `imgrec serve --workers N`) when several worker processes each keep their samples in files there.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness of each dependency")
async def readyz(request: Request) -> JSONResponse:
    """Each dependency's state; 503 when one the service cannot work without is down (the cache is optional)."""
    checks = await run_in_threadpool(request.app.state.services.readiness)
    required_ok = all(c["ok"] for c in checks.values() if c["required"])
    return JSONResponse({"ready": required_ok, "dependencies": checks}, status_code=200 if required_ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """This process's metrics, or every worker's added up when the API runs several (`imgrec serve --workers`)."""
    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
