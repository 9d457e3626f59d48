"""A step rides out a short dependency outage and gives a long one up to the engine, within its budget."""

from __future__ import annotations

import time

import pytest

from transforms.errors import RecognitionError
from transforms.retry import OutageRetry
from transforms.store import StoreUnavailable


def test_a_short_outage_is_retried_until_the_call_succeeds() -> None:
    calls = []

    def flaky(x: int) -> int:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise StoreUnavailable("down")
        return x * 2

    assert OutageRetry(budget_s=5, first_wait_s=0.05, max_wait_s=0.2)(flaky, 21) == 42
    assert len(calls) == 3 and calls[2] - calls[0] >= 0.05


def test_a_long_outage_is_raised_once_the_budget_is_spent() -> None:
    began = time.monotonic()
    with pytest.raises(StoreUnavailable):
        OutageRetry(budget_s=0.5, first_wait_s=0.05, max_wait_s=0.1)(_always_down)
    assert 0.4 < time.monotonic() - began < 3


def test_other_errors_are_not_retried() -> None:
    calls = []

    def bad() -> None:
        calls.append(1)
        raise RecognitionError("not_an_image", "no")

    with pytest.raises(RecognitionError):
        OutageRetry(budget_s=5)(bad)
    assert calls == [1]


def _always_down() -> None:
    raise StoreUnavailable("down")
