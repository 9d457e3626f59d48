"""The Kafka batch queue with no broker to talk to: `publish` fails loudly instead of losing messages."""

from __future__ import annotations

import pytest

from runners.stack.ports import free_ports
from tests.stack.test_batch_queue import message
from transforms.adapters.kafka import KafkaBatchQueue
from transforms.batch_queue import QueueUnavailable


def test_broker_down_is_reported_not_swallowed() -> None:
    port = free_ports(1)[0]  # nothing listens there
    queue = KafkaBatchQueue(f"127.0.0.1:{port}", "t")
    assert queue.ready() is False
    with pytest.raises(QueueUnavailable):
        queue.publish([message("alice", 0)])
