"""Raw model outputs (and the sync path's kept images) to the blob store, off the response path.

Form: one `.npz` per (model version, image) holding each output tensor of that image in float16, stored without
zlib (np.savez): about half the float32 size, encoded in milliseconds where `savez_compressed` of a detector's
1.7 MB of outputs took hundreds. Read back with `numpy.load(io.BytesIO(blob))`.

The URI is known before the write (`BlobStore.uri`), so a result row names it at once; encoding and writing run
on a `BackgroundWriter` (bounded, flushed on shutdown; its crash window is the README's).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import numpy as np

from transforms.background import BackgroundWriter
from transforms.blobs import BlobStore

T = TypeVar("T")


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


class BlobWriter(Generic[T]):
    """`submit` returns the blob URI at once; a background thread encodes and writes."""

    def __init__(self, name: str, blobs: BlobStore, encode: Callable[[T], bytes], max_pending: int = 64) -> None:
        self.blobs = blobs
        self.encode = encode
        self.writer: BackgroundWriter[tuple[str, T]] = BackgroundWriter(
            name, self._write, max_batch=32, linger_s=0.0, max_pending=max_pending
        )

    def submit(self, key: str, value: T) -> str:
        uri = self.blobs.uri(key)
        self.writer.submit((key, value))
        return uri

    def flush(self, timeout_s: float | None = None) -> bool:
        return self.writer.flush(timeout_s)

    def close(self) -> None:
        self.writer.close()

    def _write(self, items: Sequence[tuple[str, T]]) -> None:
        for key, value in items:
            self.blobs.put(key, self.encode(value))


class RawOutputWriter(BlobWriter[Mapping[str, np.ndarray]]):
    """Raw outputs of one image per (model version, image), as `.npz`."""

    def __init__(self, blobs: BlobStore, max_pending: int = 64) -> None:
        super().__init__("raw_outputs", blobs, encode_raw, max_pending)


def image_key(image_hash: str) -> str:
    """Blob key of an image's bytes, by content (a second write of the same image changes nothing)."""
    return f"images/{image_hash[:2]}/{image_hash}"


class KeptImages(BlobWriter[bytes]):
    """Images the sync path inferred, kept by content so a warm promotion can run them through a new version."""

    def __init__(self, blobs: BlobStore, max_pending: int = 64) -> None:
        super().__init__("kept_images", blobs, bytes, max_pending)

    def submit_image(self, image_hash: str, data: bytes) -> str:
        return self.submit(image_key(image_hash), data)
