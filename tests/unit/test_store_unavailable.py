"""A database that cannot be reached is `StoreUnavailable` (an answer of 503), found out within the bounded timeouts."""

from __future__ import annotations

import pytest

from runners.stack.ports import free_ports
from transforms.adapters.sql import SqlStore
from transforms.store import StoreUnavailable


def test_a_dead_database_is_store_unavailable_quickly() -> None:
    dead = SqlStore.from_url(f"postgresql+psycopg://postgres@127.0.0.1:{free_ports(1)[0]}/imgrec")
    with pytest.raises(StoreUnavailable):
        dead.batches.summary("x")
    assert dead.ping() is False
    dead.close()
