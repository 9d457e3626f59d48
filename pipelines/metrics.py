"""Prometheus metrics of the job's Python workers: one HTTP endpoint per TaskManager process.

In thread mode every Python operator of a TaskManager shares one interpreter, so one endpoint serves all of
them (`imgrec_stage_seconds{path="batch"}`, the background writers, cache and Redis counters). The first operator
to open starts it; a port in use (a second TaskManager on the same host) is logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import start_http_server

log = logging.getLogger(__name__)
_lock = threading.Lock()
_serving: set[int] = set()


def serve_metrics(port: int | None, host: str = "127.0.0.1") -> bool:
    """Serve this process's metrics on `port` (once per process); False when off or the port is taken."""
    if not port:
        return False
    with _lock:
        if port in _serving:
            return True
        try:
            start_http_server(port, addr=host)
        except OSError as exc:
            log.warning("batch metrics not served on %s:%s: %s", host, port, exc)
            return False
        _serving.add(port)
        return True
