"""API keys: `Authorization: Bearer <key>` -> caller_id."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from transforms.keys import CallerKeys

ANONYMOUS = "anonymous"


async def caller_id(request: Request) -> str:
    """The caller behind the request's API key (FastAPI dependency)."""
    services = request.app.state.services
    if not services.settings.auth_enabled:
        return ANONYMOUS
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(401, "Send an API key as 'Authorization: Bearer <key>'.", {"WWW-Authenticate": "Bearer"})
    keys: CallerKeys = request.app.state.caller_keys
    with request.state.stages.stage("auth"):
        caller = keys.remembered(key) or await run_in_threadpool(keys.lookup, key)
    if caller is None:
        raise HTTPException(401, "The API key is unknown or revoked.", {"WWW-Authenticate": "Bearer"})
    return caller
