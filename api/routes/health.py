"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])


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
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
