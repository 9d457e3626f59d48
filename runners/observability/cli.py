"""`imgrec exporter`: the pipeline exporter as a process."""

from __future__ import annotations

import logging

import typer


def exporter(
    host: str = typer.Option("127.0.0.1", help="Bind address."),
    port: int = typer.Option(18094, help="Port of /metrics."),
) -> None:
    """Serve the pipeline metrics (Kafka consumer lag, dead letters, open batches) for Prometheus."""
    from runners.observability.pipeline_exporter import serve
    from transforms.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO lines narrate every connection
    serve(get_settings(), host, port)
