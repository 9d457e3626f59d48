"""Completion webhooks: signed JSON POSTs from the outbox, retried with exponential backoff.

The POST itself goes through the `WebhookSender` port (`transforms/adapters/httpx.py`, behind the SSRF guard).

Every API replica runs a dispatcher; each claims due rows with a lease before sending (`Store.claim_webhooks`),
so one webhook is sent by one replica. A replica that dies mid-send leaves its lease to run out and another sends
again: every attempt carries the same `X-Imgrec-Delivery-Id`, so a receiver drops what it has already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from datetime import timedelta
from typing import Any, Protocol

from prometheus_client import Counter

from transforms.settings import Settings
from transforms.store import BatchSummary, Store

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Signature"
DELIVERY_ID_HEADER = "X-Imgrec-Delivery-Id"
# Longer than one attempt can take (connect + read timeouts), so a live replica never loses its claim mid-send.
LEASE = timedelta(seconds=60)
# outcome: delivered | retrying (failed, another attempt is scheduled) | gave_up (failed for the last time).
DELIVERIES = Counter("imgrec_webhook_deliveries_total", "Webhook delivery attempts by outcome.", ["outcome"])
for _outcome in ("delivered", "retrying", "gave_up"):
    DELIVERIES.labels(_outcome)  # every series exists from the start, so rates over it are never empty


class DeliveryFailed(Exception):
    """The POST did not get an answer (refused by the SSRF guard, unreachable, timed out); the reason as text."""


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST `body` to `url` (no redirects followed) and return the HTTP status; DeliveryFailed without one."""
        ...


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>` with the caller's webhook secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(summary: BatchSummary) -> dict[str, Any]:
    """The webhook body: the batch summary (results are fetched from GET /v1/recognize/batch/{id})."""
    return {
        "event": "batch.completed",
        "batch_id": summary.batch_id,
        "status": summary.status,
        "completed_count": summary.completed_count,
        "failed_count": summary.failed_count,
        "total_count": summary.total_count,
        "completed_at": summary.completed_at.isoformat() if summary.completed_at else None,
    }


class WebhookDispatcher:
    """Delivers due outbox rows; every attempt is recorded, failures back off 2, 4, 8 ... seconds."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sender: WebhookSender,
        base_delay_s: float = 2.0,
        max_delay_s: float = 600.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.owner = uuid.uuid4().hex  # this replica's name on the rows it claims
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self) -> int:
        """Claim the due webhooks and attempt each once; returns how many were delivered."""
        delivered = 0
        for row in self.store.outbox.claim(self.owner, LEASE):
            delivered += self._attempt(row)
        return delivered

    def _attempt(self, row: dict[str, Any]) -> bool:
        batch_id = row["batch_id"]
        summary = self.store.batches.summary(batch_id)
        secret = self.store.keys.webhook_secret(row["caller_id"]) or ""
        body = json.dumps(payload(summary), separators=(",", ":")).encode() if summary else b"{}"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            "X-Imgrec-Batch-Id": batch_id,
            DELIVERY_ID_HEADER: row["delivery_id"],
        }
        status_code: int | None = None
        error: str | None = None
        try:
            status_code = self.sender.post(row["url"], body, headers)
            ok = 200 <= status_code < 300
            if not ok:
                error = f"HTTP {status_code}"
        except DeliveryFailed as exc:
            ok, error = False, str(exc)
        attempts = row["attempts"] + 1
        retry_in = None if ok else self.retry_in(attempts)
        self.store.outbox.record_attempt(batch_id, status_code, error, ok, retry_in, owner=self.owner)
        DELIVERIES.labels("delivered" if ok else "retrying" if retry_in else "gave_up").inc()
        if not ok:
            log.warning("webhook for batch %s failed (attempt %d): %s", batch_id, attempts, error)
        return ok

    def retry_in(self, attempts: int) -> timedelta | None:
        """The wait after `attempts` failed attempts: base, 2 x base, 4 x base ... up to the cap; None gives up."""
        if attempts >= self.settings.webhook_max_attempts:
            return None
        return timedelta(seconds=min(self.base_delay_s * 2 ** (attempts - 1), self.max_delay_s))

    def start(self, interval_s: float = 1.0) -> None:
        """Poll the outbox in a daemon thread until `stop`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.deliver_due()
                except Exception:  # the loop must outlive a database hiccup
                    log.exception("webhook dispatch failed")

        self._thread = threading.Thread(target=loop, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
