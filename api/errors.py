"""Every failure leaves the API as `{"error": {"code", "message"}}` with a fitting status, never a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from transforms.backends.base import InferenceUnavailable
from transforms.batch_queue import QueueUnavailable
from transforms.blobs import BlobStoreUnavailable
from transforms.errors import RecognitionError
from transforms.store import StoreUnavailable

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object):
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, validation and HTTP errors to the JSON error body."""

    @app.exception_handler(RecognitionError)
    async def _recognition(_: Request, exc: RecognitionError) -> JSONResponse:
        retry_after = exc.details.get("retry_after_s")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers)

    unavailable = {
        InferenceUnavailable: ("inference_unavailable", "The inference server is unavailable; retry shortly."),
        QueueUnavailable: ("queue_unavailable", "The batch queue is unavailable; nothing was queued, retry shortly."),
        StoreUnavailable: ("database_unavailable", "The database is unavailable; retry shortly."),
        BlobStoreUnavailable: ("blob_store_unavailable", "The blob store is unavailable; retry shortly."),
    }

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        code, message = next(v for k, v in unavailable.items() if isinstance(exc, k))
        log.warning("%s: %s", code, exc)
        return error_response(503, code, message, headers={"Retry-After": str(RETRY_AFTER_S)})

    for kind in unavailable:
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        detail = [{"field": _field(tuple(e.get("loc", ()))), "message": e["msg"]} for e in errors]
        return error_response(422, "invalid_request", message, fields=detail)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
