"""API keys: `Authorization: Bearer <key>` -> the key's record (its caller and admission limits)."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from transforms.store import ApiKey, Store

ANONYMOUS = "anonymous"
KEY_TTL_S = 30.0  # a revoked key (or a changed limit) takes effect in a running process within this long


class CallerKeys:
    """Resolves API keys, remembering known keys briefly so a cache hit costs no database trip."""

    def __init__(self, store: Store, ttl_s: float = KEY_TTL_S) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._known: dict[str, tuple[float, ApiKey]] = {}

    def remembered(self, key: str) -> ApiKey | None:
        hit = self._known.get(hashlib.sha256(key.encode()).hexdigest())
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None

    def lookup(self, key: str) -> ApiKey | None:
        record = self.store.api_key(key)
        if record is not None:  # unknown keys are not remembered: nothing to fill memory with
            self._known[record.key_hash] = (time.monotonic(), record)
        return record


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
