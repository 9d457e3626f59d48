"""API keys: `Authorization: Bearer <key>` -> caller_id."""

from __future__ import annotations

import hashlib
import time

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from transforms.store import Store

ANONYMOUS = "anonymous"
KEY_TTL_S = 30.0  # a revoked key keeps working at most this long in a running process


class CallerKeys:
    """Resolves API keys to callers, remembering known keys briefly so a cache hit costs no database trip."""

    def __init__(self, store: Store, ttl_s: float = KEY_TTL_S) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._known: dict[str, tuple[float, str]] = {}

    def remembered(self, key: str) -> str | None:
        hit = self._known.get(hashlib.sha256(key.encode()).hexdigest())
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None

    def lookup(self, key: str) -> str | None:
        caller = self.store.caller_for_key(key)
        if caller is not None:  # unknown keys are not remembered: nothing to fill memory with
            self._known[hashlib.sha256(key.encode()).hexdigest()] = (time.monotonic(), caller)
        return caller


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
