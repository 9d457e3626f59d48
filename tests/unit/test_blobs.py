"""Blob store over fsspec: file:// round trips, URIs, refusals outside the root, and another fsspec protocol."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from transforms.adapters.fsspec import FsspecBlobStore
from transforms.composition import make_blob_store
from transforms.errors import RecognitionError
from transforms.settings import Settings


@pytest.fixture
def store(tmp_path: Path) -> FsspecBlobStore:
    return FsspecBlobStore((tmp_path / "blobs").as_uri())


def test_put_returns_a_file_uri_and_get_reads_it(store: FsspecBlobStore, tmp_path: Path) -> None:
    uri = store.put("raw/scene/v1/abc.npz", b"\x00\x01payload")
    assert uri == (tmp_path / "blobs" / "raw" / "scene" / "v1" / "abc.npz").as_uri()
    assert (tmp_path / "blobs" / "raw" / "scene" / "v1" / "abc.npz").read_bytes() == b"\x00\x01payload"
    assert store.get(uri) == b"\x00\x01payload"


def test_put_replaces(store: FsspecBlobStore) -> None:
    uri = store.put("claims/item", b"first")
    assert store.put("claims/item", b"second") == uri
    assert store.get(uri) == b"second"


def test_empty_and_large_blobs(store: FsspecBlobStore) -> None:
    big = bytes(range(256)) * 40_000  # 10 MB
    assert store.get(store.put("big", big)) == big
    assert store.get(store.put("empty", b"")) == b""


def test_a_second_store_on_the_same_root_reads_the_blob(store: FsspecBlobStore) -> None:
    uri = store.put("shared/x", b"data")
    assert FsspecBlobStore(store.root_uri + "/").get(uri) == b"data"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "../escape", "a//b", "./a", "a\\b", "a/"])
def test_put_refuses_keys_that_are_not_plain_paths(store: FsspecBlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_get_refuses_uris_outside_the_root(store: FsspecBlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    for uri in (
        secret.as_uri(),
        "file:///etc/passwd",
        f"{store.root_uri}/../secret.txt",
        f"{store.root_uri}/",
        f"{store.root_uri}x/a",  # a sibling directory sharing the prefix
        "s3://bucket/key",
    ):
        with pytest.raises(RecognitionError) as info:
            store.get(uri)
        assert (info.value.code, info.value.http_status) == ("blob_forbidden", 400), uri


def test_missing_blob(store: FsspecBlobStore) -> None:
    with pytest.raises(RecognitionError) as info:
        store.get(f"{store.root_uri}/nothing/here")
    assert (info.value.code, info.value.http_status) == ("blob_not_found", 404)


def test_other_fsspec_protocols_work_the_same_way() -> None:
    # fsspec's in-memory filesystem stands in for s3:// and gs://, which need credentials and a network.
    root = f"memory://imgrec-test-{uuid.uuid4().hex}/blobs"
    store = FsspecBlobStore(root)
    uri = store.put("raw/a.npz", b"abc")
    assert uri == f"{root}/raw/a.npz"
    assert store.get(uri) == b"abc"


def test_make_blob_store_uses_the_resolved_root(tmp_path: Path) -> None:
    store = make_blob_store(Settings(var_dir=tmp_path))
    assert store.root_uri == (tmp_path / "blobs").as_uri()
    assert store.put("k", b"v").startswith((tmp_path / "blobs").as_uri())
    store = make_blob_store(Settings(var_dir=tmp_path, blob_root=(tmp_path / "elsewhere").as_uri()))
    assert store.get(store.put("k", b"v")) == b"v"
    assert (tmp_path / "elsewhere" / "k").exists()
