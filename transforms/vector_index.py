"""The vector index port: approximate nearest neighbours by cosine similarity over unit vectors, keyed by integers.

The adapter is `transforms/adapters/usearch.py` (HNSW). An index serialises to bytes so that the blob store can keep
it between restarts.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (float32, shape [n, dimension]) under new uint64 keys."""
        ...

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The keys of the (at most) k nearest vectors and their cosine similarities, most similar first."""
        ...

    def __len__(self) -> int: ...

    @property
    def memory_bytes(self) -> int:
        """Memory the index holds (vectors and graph)."""
        ...

    def to_bytes(self) -> bytes: ...


class VectorIndexFactory(Protocol):
    def new(self, dimension: int) -> VectorIndex: ...

    def restore(self, data: bytes) -> VectorIndex:
        """An index from `VectorIndex.to_bytes`; ValueError when the bytes are not one."""
        ...
