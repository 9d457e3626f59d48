"""Waiting for the batch job to be ready (see `transforms.job_health`), then for one checkpoint more, so the
source's splits are positioned and in the job's state."""

from __future__ import annotations

import time

from pipelines.submit import JobError, job_status
from transforms.composition import make_job_health
from transforms.job_health import Readiness
from transforms.settings import Settings


def job_readiness(settings: Settings) -> Readiness:
    """The batch job's readiness now."""
    health = make_job_health(settings)
    return health.readiness() if health else Readiness(False, "IMGREC_FLINK_REST_URL is not set")


def wait_ready(settings: Settings, timeout_s: float = 180.0) -> None:
    """Block until the job is ready, then until one more checkpoint has completed; JobError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    readiness = job_readiness(settings)
    while not readiness.ready:
        if time.monotonic() > deadline:
            raise JobError(f"the batch job is not ready after {timeout_s:.0f} s: {readiness.reason}")
        time.sleep(0.5)
        readiness = job_readiness(settings)
    status = job_status(settings)
    assert status is not None
    seen = status.checkpoints_completed
    while (status := job_status(settings)) is not None and status.checkpoints_completed <= seen:
        if time.monotonic() > deadline:
            raise JobError(f"the batch job completed no checkpoint within {timeout_s:.0f} s of being assigned its "
                           "partitions")
        time.sleep(0.5)
