"""Raw model outputs to the blob store, off the response path.

Form: one `.npz` per (model version, image) holding each output tensor of that image in float16, stored without
zlib (np.savez): about half the float32 size, encoded in milliseconds where `savez_compressed` of a detector's
1.7 MB of outputs took hundreds. Read back with `numpy.load(io.BytesIO(blob))`.

The URI is known before the write (`BlobStore.uri`), so a result row names it at once; encoding and writing run
on a `BackgroundWriter` (bounded, flushed on shutdown; its crash window is the README's).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from transforms.background import BackgroundWriter
from transforms.blobs import BlobStore

RawItem = tuple[str, Mapping[str, np.ndarray]]


def raw_key(model_id: str, version: str, image_hash: str) -> str:
    """Blob key of one image's raw outputs through one model version."""
    return f"raw/{model_id}/{version}/{image_hash}.npz"


def encode_raw(raw: Mapping[str, np.ndarray]) -> bytes:
    """One image's output tensors -> an uncompressed .npz, floats as float16 (other dtypes kept)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: v.astype(np.float16) if v.dtype.kind == "f" else v for k, v in raw.items()})
    return buf.getvalue()


def decode_raw(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of a raw-output blob."""
    with np.load(io.BytesIO(blob)) as npz:
        return {name: npz[name] for name in npz.files}


class RawOutputWriter:
    """`submit` returns the blob URI at once; a background thread encodes and writes."""

    def __init__(self, blobs: BlobStore, max_pending: int = 64) -> None:
        self.blobs = blobs
        self.writer: BackgroundWriter[RawItem] = BackgroundWriter(
            "raw_outputs", self._write, max_batch=32, linger_s=0.0, max_pending=max_pending
        )

    def submit(self, key: str, raw: Mapping[str, np.ndarray]) -> str:
        uri = self.blobs.uri(key)
        self.writer.submit((key, raw))
        return uri

    def flush(self, timeout_s: float | None = None) -> bool:
        return self.writer.flush(timeout_s)

    def close(self) -> None:
        self.writer.close()

    def _write(self, items: Sequence[RawItem]) -> None:
        for key, raw in items:
            self.blobs.put(key, encode_raw(raw))
