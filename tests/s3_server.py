"""A real S3-compatible server on 127.0.0.1 (moto's server mode), for the blob store's `s3://` root.

s3fs finds it through the environment, as a deployment would point at MinIO or another S3-compatible store:
`AWS_ENDPOINT_URL` and the access keys (fsspec passes no options of its own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import httpx

from runners.stack.ports import free_ports


@contextmanager
def s3_server() -> Iterator[subprocess.Popen[bytes]]:
    """A started moto S3 server whose address and (dummy) keys are in the environment while the block runs."""
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "imgrec-test", "AWS_SECRET_ACCESS_KEY": "imgrec-test",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start on {url}") from None
                time.sleep(0.2)
        with mock.patch.dict(os.environ, env):
            yield proc
    finally:
        proc.kill()
        proc.wait(10)
