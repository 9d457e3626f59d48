"""Webhook delivery from the outbox: signed body, every attempt recorded, backoff, giving up."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta

from tests.unit.fakes import TINY
from transforms.ports import Ports
from transforms.store import NewBatch, NewRequest
from transforms.webhooks import SIGNATURE_HEADER, DeliveryFailed, WebhookDispatcher

HOOK = "https://hooks.example.com/done"


class FakeSender:
    """The `WebhookSender` port: answers each POST with the next scripted status (or failure), records them."""

    def __init__(self, *answers: int | str) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts.append((url, body, headers))
        answer = self.answers.pop(0)
        if isinstance(answer, str):
            raise DeliveryFailed(answer)
        return answer


def finished_batch(ports: Ports, callback: str | None = HOOK) -> str:
    """A one-item batch whose item has failed, so the batch has ended and its webhook is due."""
    batch_id, request_id = uuid.uuid4().hex, uuid.uuid4().hex
    item = NewRequest(request_id, "alice", TINY, batch_id=batch_id)
    ports.store.batches.create(NewBatch(batch_id, "alice", callback, []), [item])
    ports.store.requests.fail(request_id, "not_an_image", "x")
    return batch_id


def test_a_delivery_is_signed_with_the_callers_secret_and_sent_once(ports: Ports) -> None:
    batch_id = finished_batch(ports)
    sender = FakeSender(204)
    dispatcher = WebhookDispatcher(ports.settings, ports.store, sender)
    assert dispatcher.deliver_due() == 1
    [(url, body, headers)] = sender.posts
    secret = ports.store.keys.webhook_secret("alice") or ""
    assert url == HOOK and headers["X-Imgrec-Batch-Id"] == batch_id
    assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    payload = json.loads(body)
    assert payload.pop("completed_at")
    assert payload == {
        "event": "batch.completed", "batch_id": batch_id, "status": "failed", "completed_count": 0,
        "failed_count": 1, "total_count": 1,
    }
    assert dispatcher.deliver_due() == 0, "a delivered webhook is not sent again"
    assert [(a["status_code"], a["error"]) for a in ports.store.outbox.attempts(batch_id)] == [(204, None)]


def test_a_failure_waits_for_its_backoff(ports: Ports) -> None:
    batch_id = finished_batch(ports)
    sender = FakeSender(500)
    dispatcher = WebhookDispatcher(ports.settings, ports.store, sender, base_delay_s=60)
    assert dispatcher.deliver_due() == 0
    assert ports.store.outbox.due() == [], "the retry waits for its backoff"
    assert [(a["status_code"], a["error"]) for a in ports.store.outbox.attempts(batch_id)] == [(500, "HTTP 500")]


def test_retries_until_the_last_attempt_then_give_up(ports: Ports) -> None:
    ports.settings.webhook_max_attempts = 3
    batch_id = finished_batch(ports)
    sender = FakeSender(500, "connection refused", 503, 200)
    dispatcher = WebhookDispatcher(ports.settings, ports.store, sender, base_delay_s=0)  # every retry due at once
    for _ in range(4):
        assert dispatcher.deliver_due() == 0
    assert len(sender.posts) == 3, "given up after the last attempt"
    assert [(a["status_code"], a["error"]) for a in ports.store.outbox.attempts(batch_id)] == [
        (500, "HTTP 500"), (None, "connection refused"), (503, "HTTP 503")]


def test_backoff_doubles_up_to_the_cap(ports: Ports) -> None:
    ports.settings.webhook_max_attempts = 6
    dispatcher = WebhookDispatcher(ports.settings, ports.store, FakeSender(), base_delay_s=2, max_delay_s=10)
    assert [dispatcher.retry_in(n) for n in range(1, 7)] == [
        timedelta(seconds=s) for s in (2, 4, 8, 10, 10)] + [None]


def test_a_batch_without_callback_has_no_webhook(ports: Ports) -> None:
    finished_batch(ports, callback=None)
    sender = FakeSender()
    assert WebhookDispatcher(ports.settings, ports.store, sender).deliver_due() == 0
    assert sender.posts == []
