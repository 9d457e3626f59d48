"""The `BatchQueue` port (publish batch-item messages) and the embedded default's in-process queue.

The Kafka adapter (one message per item, keyed by caller_id) is `transforms/adapters/kafka.py`.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import Protocol

from transforms.messages import BatchItemMessage


class QueueUnavailable(RuntimeError):
    """Messages could not be handed to the queue; nothing was published for them."""


class BatchQueue(Protocol):
    def publish(self, messages: Sequence[BatchItemMessage]) -> None: ...

    def ready(self) -> bool: ...

    def close(self) -> None: ...


class InProcessBatchQueue:
    """The embedded default: a thread-safe queue drained by the embedded batch workers."""

    def __init__(self) -> None:
        self.queue: queue.Queue[BatchItemMessage] = queue.Queue()

    def publish(self, messages: Sequence[BatchItemMessage]) -> None:
        for m in messages:
            self.queue.put(m)

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        pass
