"""`imgrec serve`: serve the API with uvicorn."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option(None, help="Bind address (default: IMGREC_HOST)."),
    port: int = typer.Option(None, help="Port (default: IMGREC_PORT)."),
) -> None:
    """Serve the REST API (embedded default unless IMGREC_* URLs point at real services)."""
    import uvicorn

    from api.app import create_app
    from transforms.settings import get_settings

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info")
