"""The SQL store on SQLite, the embedded default's database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contracts.store import MODEL, StoreContract
from transforms.adapters.sql import SqlStore, upgrade


@pytest.fixture
def store(migrated_sqlite: Path, tmp_path: Path) -> Iterator[SqlStore]:
    path = tmp_path / "imgrec.db"
    shutil.copyfile(migrated_sqlite, path)
    upgrade(f"sqlite:///{path}")  # idempotent
    s = SqlStore.from_url(f"sqlite:///{path}")
    s.registry.seed([MODEL])
    yield s
    s.close()


class TestSqliteStore(StoreContract):
    pass
