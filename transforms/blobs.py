"""The `BlobStore` port: raw model outputs and the batch path's claim-check image bytes, by URI.

The adapter is `transforms/adapters/fsspec.py` (`file://`, `s3://`, `gs://`).
"""

from __future__ import annotations

from typing import Protocol


class BlobStoreUnavailable(RuntimeError):
    """The blob store cannot be read or written now (object store down, disk full); callers answer 503 or retry."""


class BlobStore(Protocol):
    def uri(self, key: str) -> str:
        """The URI that `put(key, ...)` writes, known before the write (background writers name it at once)."""
        ...

    def put(self, key: str, data: bytes) -> str:
        """Write `data` at a plain relative `key`, replacing any blob there; returns the blob's URI."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes at a URI that `put` handed back; RecognitionError blob_forbidden / blob_not_found."""
        ...
