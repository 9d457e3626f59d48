"""The per-caller similarity index over SQLite and file blobs: catch-up from the store, persistence, rebuilds."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.contracts.store import MODEL
from transforms.adapters.fsspec import FsspecBlobStore
from transforms.adapters.sql import SqlStore
from transforms.adapters.usearch import UsearchFactory
from transforms.similarity import SimilarityIndex, blob_base
from transforms.store import CompletedItem, FinishedRequest, NewRequest

EMBED = replace(MODEL, extra={"dimension": 8})


@pytest.fixture
def store(migrated_sqlite: Path, tmp_path: Path) -> Iterator[SqlStore]:
    path = tmp_path / "imgrec.db"
    shutil.copyfile(migrated_sqlite, path)
    s = SqlStore.from_url(f"sqlite:///{path}")
    yield s
    s.close()


@pytest.fixture
def blobs(tmp_path: Path) -> FsspecBlobStore:
    return FsspecBlobStore((tmp_path / "blobs").as_uri())


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).random(8, dtype=np.float32)
    return v / np.linalg.norm(v)


def sent(store: SqlStore, caller: str, image_hash: str, vector: np.ndarray) -> None:
    """A finished request of the caller whose result carries the vector (what a sink or the sync writer stores)."""
    rid = f"{caller}-{image_hash}"
    done = CompletedItem(rid, "m", "1", image_hash, [], None, False, embedding=vector)
    store.requests.insert_finished([FinishedRequest(NewRequest(rid, caller, "m", image_hash=image_hash), done)])


def index(store: SqlStore, blobs: FsspecBlobStore) -> SimilarityIndex:
    return SimilarityIndex(store.embeddings, blobs, UsearchFactory("f32"), save_interval_s=3600)


def test_rows_written_elsewhere_are_found_and_other_callers_never(store: SqlStore, blobs: FsspecBlobStore) -> None:
    sim = index(store, blobs)
    sent(store, "alice", "a1", unit(1))
    assert [m.image_hash for m in sim.search("alice", EMBED, unit(1), k=5)] == ["a1"]
    # Rows another process wrote after this index was opened (a batch sink) are caught up at the next search.
    sent(store, "alice", "a2", unit(2))
    sent(store, "bob", "b1", unit(1))
    found = sim.search("alice", EMBED, unit(2), k=5)
    assert [m.image_hash for m in found] == ["a2", "a1"] and found[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert found[0].request_id == "alice-a2"
    assert [m.image_hash for m in sim.search("bob", EMBED, unit(1), k=5)] == ["b1"]
    assert sim.search("carol", EMBED, unit(1), k=5) == []
    sim.close()


def test_saved_index_is_loaded_and_a_damaged_one_rebuilt(store: SqlStore, blobs: FsspecBlobStore) -> None:
    sim = index(store, blobs)
    sim.add("alice", EMBED, "fresh", unit(3))  # the sync path: searchable before its rows land
    assert [m.image_hash for m in sim.search("alice", EMBED, unit(3), k=1)] == ["fresh"]
    assert sim.save() == 1 and sim.save() == 0  # only changed indexes are written
    sim.close()
    # A new process loads the snapshot: the vector whose rows never landed is still there.
    assert sim_size(index(store, blobs)) == 1
    # A damaged snapshot is rebuilt from the store (which holds no row of "fresh").
    sent(store, "alice", "a1", unit(1))
    base = blob_base("alice", "m", "1")
    blobs.put(f"{base}.index", b"not an index")
    rebuilt = index(store, blobs)
    assert [m.image_hash for m in rebuilt.search("alice", EMBED, unit(3), k=5)] == ["a1"]
    rebuilt.close()
    assert sim_size(index(store, blobs)) == 1


def sim_size(sim: SimilarityIndex) -> int:
    try:
        return len(sim.search("alice", EMBED, unit(3), k=10))
    finally:
        sim.close()
