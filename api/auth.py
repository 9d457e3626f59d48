"""API keys: `Authorization: Bearer <key>` -> caller_id."""

from __future__ import annotations

from fastapi import HTTPException, Request

ANONYMOUS = "anonymous"


def caller_id(request: Request) -> str:
    """The caller behind the request's API key (FastAPI dependency)."""
    services = request.app.state.services
    if not services.settings.auth_enabled:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "Send an API key as 'Authorization: Bearer <key>'.", {"WWW-Authenticate": "Bearer"})
    caller = services.store.caller_for_key(key.strip())
    if caller is None:
        raise HTTPException(401, "The API key is unknown or revoked.", {"WWW-Authenticate": "Bearer"})
    return caller
