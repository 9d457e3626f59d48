"""Request middleware: request ids (taken from `X-Request-ID` or made, echoed, on every log line), latency, and the
per-stage timer of the request (`request.state.stages`, sent back as `Server-Timing`, observed in
`imgrec_stage_seconds` once the response has gone)."""

from __future__ import annotations

import contextvars
import logging
import time
import uuid

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transforms.stages import StageTimer

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
REQUEST_SECONDS = Histogram(
    "imgrec_http_request_seconds",
    "API request latency by route template and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.5, 3, 10),
)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines carry the request id of the request that wrote them."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    if not any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        root.addHandler(handler)
    root.setLevel(level)


class RequestIdMiddleware:
    """Pure ASGI middleware (no body buffering): request id for the request's duration, and its latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        began = time.perf_counter()
        status = 500
        timer = StageTimer()
        scope.setdefault("state", {})["stages"] = timer

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", rid.encode("latin-1")))
                if timer.path is not None:
                    timer.add("total", time.perf_counter() - began)
                    headers.append((b"server-timing", timer.server_timing().encode("latin-1")))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            # The route template (not the raw path) keeps the label set small: batch ids are not labels.
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(time.perf_counter() - began)
            if timer.path is not None and status >= 400:
                timer.path = "sync_error"
            timer.finish()
