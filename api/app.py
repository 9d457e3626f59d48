"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.admission import Admission
from api.errors import install_error_handlers
from api.middleware import RequestIdMiddleware, configure_logging
from api.routes import batch, console, health, models, recognize, requests, search
from transforms.composition import build_services
from transforms.keys import CallerKeys
from transforms.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, services: object | None = None) -> FastAPI:
    """Build the app; its services (store, cache, back end, queue, ...) are built at start-up from `settings`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging()
        running = app.state.services = services or build_services(settings)
        running.start()
        app.state.caller_keys = CallerKeys(running.store.keys, running.settings.key_cache_ttl_s)
        app.state.admission = Admission(running.settings, running.rate_limiter)
        try:
            yield
        finally:
            running.stop()

    # Swagger UI and ReDoc from the package's local copies: /docs and /redoc work with no network.
    app = FastAPIOffline(
        title="imgrec",
        version="0.1.0",
        summary="Image recognition: labels, scores and boxes from object detection, scene, face and NSFW models.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(recognize.router)
    app.include_router(batch.router)
    app.include_router(requests.router)
    app.include_router(models.router)
    app.include_router(search.router)
    app.include_router(console.router)
    app.mount(console.ASSETS_PATH, console.static_files(), name="console")
    return app
