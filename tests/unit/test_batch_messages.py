"""The batch path's engine-agnostic rules: parsing a message (bad ones to the dead-letter topic), in-flight dedup."""

from __future__ import annotations

import json
import pickle

import pytest

from transforms.batch_steps import BadMessage, InFlightDedup, Settle, dead_letter, parse_message
from transforms.errors import RecognitionError


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not json", "not a JSON batch item"),
        (b"[1, 2]", "invalid batch item"),
        (json.dumps({"schema": "imgrec.batch_item/v1", "request_id": "x", "caller_id": "c", "model_id": "m",
                     "image_uri": "file:///x", "surprise": 1}).encode(), "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_messages_are_refused_with_a_reason_for_the_dead_letter_topic(raw: bytes, reason: str) -> None:
    with pytest.raises(BadMessage) as refused:
        parse_message(raw)
    assert reason in refused.value.reason
    letter = json.loads(dead_letter(raw, refused.value.reason))
    assert letter["reason"] == refused.value.reason
    assert letter["message"] == raw.decode("utf-8", "replace")


def test_in_flight_dedup_serves_parked_copies_from_the_cache_or_releases_them_after_the_bound() -> None:
    dedup = InFlightDedup(recheck_ms=250, give_up_ms=30_000)
    # Re-checks lie on a grid, so every copy parked in the same tick asks for the same (one) timer.
    assert dedup.next_check(1_000) == dedup.next_check(1_249) == 1_250
    assert dedup.next_check(1_250) == 1_500
    since = 10_000
    assert dedup.settle(since, since + 250, cached=False) is Settle.WAIT
    assert dedup.settle(since, since + 250, cached=True) is Settle.HITS
    assert dedup.settle(since, since + 29_999, cached=False) is Settle.WAIT
    assert dedup.settle(since, since + 30_000, cached=False) is Settle.MISSES  # the first copy failed or is stuck
    assert dedup.settle(since, since + 1, cached=False, input_ended=True) is Settle.MISSES  # nothing is lost
    assert dedup.settle(since, since + 1, cached=True, input_ended=True) is Settle.HITS
    assert dedup.settle(None, 0, cached=False) is Settle.MISSES  # parked without a mark: never wait for nothing


def test_an_items_error_survives_pickling_between_operators() -> None:
    error = RecognitionError("not_an_image", "The bytes are not an image.", limit=3)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.message, copy.http_status, copy.details) == (
        RecognitionError, "not_an_image", "The bytes are not an image.", error.http_status, {"limit": 3}
    )
