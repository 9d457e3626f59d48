"""A real HTTP server on 127.0.0.1 that records webhook deliveries (and can fail the first N, or answer slowly)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    event: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_receiver(fail_first: int = 0, delay_s: float = 0.0) -> Iterator[tuple[str, Received]]:
    received = Received(fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if received.fail_first > 0:
                received.fail_first -= 1
                self.send_response(503)
                self.end_headers()
                return
            time.sleep(delay_s)  # a slow receiver widens the window in which a second sender could interfere
            received.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
            received.event.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
