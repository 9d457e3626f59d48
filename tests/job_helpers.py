"""Helpers for tests that drive the Flink batch job."""

from __future__ import annotations

import time

from pipelines.submit import job_status
from transforms.settings import Settings


def wait_running(settings: Settings, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job_status(settings)
        if status is not None and status.state == "RUNNING":
            return
        time.sleep(0.5)
    raise AssertionError(f"job not running: {job_status(settings)}")
