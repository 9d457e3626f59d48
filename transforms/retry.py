"""Riding out a short outage of a dependency inside one step; a long one is raised for the engine to handle.

The batch path retries a step that found Triton, the database or the blob store unavailable, with exponential
backoff and jitter, for at most `Settings.dependency_retry_s`. Meanwhile the step holds its input, so Flink's
backpressure holds the backlog in Kafka; past the budget the error propagates and Flink restarts the job by its
restart strategy (the embedded runner requeues the items).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from transforms.backends.base import InferenceUnavailable
from transforms.blobs import BlobStoreUnavailable
from transforms.store import StoreUnavailable

log = logging.getLogger(__name__)
OUTAGES = (InferenceUnavailable, StoreUnavailable, BlobStoreUnavailable)
P = ParamSpec("P")
T = TypeVar("T")


class OutageRetry:
    """Calls a function, retrying it on a dependency outage within a time budget."""

    def __init__(self, budget_s: float, first_wait_s: float = 0.25, max_wait_s: float = 4.0) -> None:
        self.budget_s = budget_s
        self.first_wait_s = first_wait_s
        self.max_wait_s = max_wait_s

    def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(OUTAGES),
            wait=wait_exponential_jitter(initial=self.first_wait_s, max=self.max_wait_s),
            stop=stop_after_delay(self.budget_s),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)
