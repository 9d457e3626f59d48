"""The blob store through fsspec: bytes under a root URI (`file://` by default; `s3://`, `gs://` when configured).

Holds raw model outputs and the batch path's claim-check image bytes. A URI handed back by `put` is the only
thing `get` reads: URIs outside the root are refused, so a message that names a blob cannot read other files.
`s3://` uses `s3fs` and `gs://` `gcsfs`, both installed with the project.

A store that cannot be reached is `BlobStoreUnavailable` (503, retried by the batch steps), whatever its client
raises: fsspec's back ends pass on their libraries' own errors (botocore's EndpointConnectionError, aiohttp's,
google-auth's), which are not OSErrors.
"""

from __future__ import annotations

from typing import Any

import fsspec

from transforms.blobs import BlobStoreUnavailable
from transforms.errors import RecognitionError


class FsspecBlobStore:
    """The `BlobStore` port: put(key, bytes) -> URI and get(URI) -> bytes under one root."""

    def __init__(self, root_uri: str, **storage_options: Any) -> None:
        if root_uri.startswith("file://"):
            storage_options.setdefault("auto_mkdir", True)  # object stores have no directories to create
        self.fs, root_path = fsspec.url_to_fs(root_uri, **storage_options)
        self.root_uri = root_uri.rstrip("/")
        self._root_path = root_path.rstrip("/")

    def uri(self, key: str) -> str:
        """The URI that `put(key, ...)` writes (known before the write, so a row can name it at once)."""
        if not _plain_key(key):
            raise ValueError(f"blob key must be a plain relative path, not {key!r}")
        return f"{self.root_uri}/{key}"

    def put(self, key: str, data: bytes) -> str:
        """Write `data` at `key` (a relative path like "raw/model/v1/abc.npz"), replacing any blob there."""
        uri = self.uri(key)
        try:
            self.fs.pipe_file(f"{self._root_path}/{key}", data)
        except Exception as exc:  # any client error: see the module docstring
            raise BlobStoreUnavailable(f"blob store {self.root_uri}: {exc}") from exc
        return uri

    def get(self, uri: str) -> bytes:
        """The bytes at a URI under this store's root: blob_forbidden (400) outside it, blob_not_found (404)."""
        prefix = f"{self.root_uri}/"
        key = uri[len(prefix) :] if uri.startswith(prefix) else ""
        if not _plain_key(key):
            raise RecognitionError("blob_forbidden", "The blob reference is not under this service's blob store.")
        try:
            return self.fs.cat_file(f"{self._root_path}/{key}")
        except FileNotFoundError as exc:
            raise RecognitionError("blob_not_found", f"No blob at {uri}.") from exc
        except Exception as exc:  # any client error: see the module docstring
            raise BlobStoreUnavailable(f"blob store {self.root_uri}: {exc}") from exc


def _plain_key(key: str) -> bool:
    """A relative path without empty, "." or ".." segments (nothing that could climb out of the root)."""
    return bool(key) and "\\" not in key and all(part not in ("", ".", "..") for part in key.split("/"))
