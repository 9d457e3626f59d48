"""API keys: `Authorization: Bearer <key>` -> the key's record (its caller and admission limits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from transforms.keys import CallerKeys
from transforms.store import ApiKey

ANONYMOUS = "anonymous"


async def api_key(request: Request) -> ApiKey:
    """The record of the request's API key (FastAPI dependency); with auth off, the anonymous caller."""
    services = request.app.state.services
    if not services.settings.auth_enabled:
        return ApiKey(ANONYMOUS, ANONYMOUS)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(401, "Send an API key as 'Authorization: Bearer <key>'.", {"WWW-Authenticate": "Bearer"})
    keys: CallerKeys = request.app.state.caller_keys
    with request.state.stages.stage("auth"):
        record = keys.remembered(key) or await run_in_threadpool(keys.lookup, key)
    if record is None:
        raise HTTPException(401, "The API key is unknown or revoked.", {"WWW-Authenticate": "Bearer"})
    return record


async def caller_id(record: Annotated[ApiKey, Depends(api_key)]) -> str:
    """The caller behind the request's API key (FastAPI dependency)."""
    return record.caller_id
