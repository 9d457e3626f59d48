"""The vector index port on usearch (HNSW, cosine metric); vectors held as f32, f16 or i8."""

from __future__ import annotations

import numpy as np

# onnxruntime's native library must be loaded before usearch's: in the other order (usearch 2.26.6, onnxruntime
# 1.23.2) `import onnxruntime` crashes the process, and in Flink's embedded Python it hung the TaskManager.
import onnxruntime  # noqa: F401
from usearch.index import Index, Matches


class UsearchIndex:
    """One usearch `Index`; `VectorIndex` port."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add(np.asarray(keys, np.uint64), np.asarray(vectors, np.float32), threads=1)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.index) == 0 or k <= 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.float32)
        found = self.index.search(np.asarray(vector, np.float32), k, threads=1)
        assert isinstance(found, Matches)
        # usearch's cosine distance is 1 - cosine similarity.
        return np.asarray(found.keys, np.uint64), (1.0 - np.asarray(found.distances, np.float32))

    def __len__(self) -> int:
        return len(self.index)

    @property
    def memory_bytes(self) -> int:
        return int(self.index.memory_usage)

    def to_bytes(self) -> bytes:
        return bytes(self.index.save())


class UsearchFactory:
    """`VectorIndexFactory` port: new indexes of one scalar type, or ones restored from bytes."""

    def __init__(self, dtype: str = "f16") -> None:
        self.dtype = dtype

    def new(self, dimension: int) -> UsearchIndex:
        return UsearchIndex(Index(ndim=dimension, metric="cos", dtype=self.dtype))

    def restore(self, data: bytes) -> UsearchIndex:
        index = Index.restore(bytearray(data), view=False)
        if index is None:
            raise ValueError("not a usearch index")
        return UsearchIndex(index)
