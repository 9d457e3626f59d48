"""Embeddings and similarity search end to end, the same on the embedded default and on the real stack."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data as skimage_data

from api.app import create_app
from tests.api_helpers import wait_batch_done
from transforms.settings import Settings

EMBED = "image-embedding"
SCENE = "scene-classification"
THRESHOLD = Settings.model_fields["near_duplicate_threshold"].default
PHOTOS = ("coffee", "astronaut", "rocket", "chelsea")


def tagged_photo(name: str, tag: str) -> bytes:
    """A full-size scikit-image photo as JPEG with a comment unique to `tag`: new bytes (new hash), same pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(getattr(skimage_data, name)())).convert("RGB").save(buf, "JPEG", quality=90)
    jpeg, text = buf.getvalue(), tag.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def resized_copy(jpeg: bytes, scale: float = 0.6, quality: int = 60) -> bytes:
    """The photo scaled down and re-encoded at a lower JPEG quality: other bytes, other pixels, the same picture."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    small = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextmanager
def similarity_app(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A started app and the auth header of a caller of its own (unique per call, so callers never share images)."""
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, new_caller(client)


def new_caller(client: TestClient) -> dict[str, str]:
    key = client.app.state.services.store.keys.create(f"sim-{uuid.uuid4().hex[:12]}")
    return {"Authorization": f"Bearer {key}"}


def embed(client: TestClient, headers: dict[str, str], jpeg: bytes) -> dict:
    r = client.post("/v1/recognize", json={"image_data": b64(jpeg), "model_id": EMBED}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def search(client: TestClient, headers: dict[str, str], **body) -> dict:
    r = client.post("/v1/search/similar", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def index_blobs(settings: Settings) -> list[Path]:
    """The similarity index files under a file:// blob root."""
    return sorted(Path(settings.resolved_blob_root.removeprefix("file://")).glob("similarity/**/*.*"))


def check_batch_fills_the_index(client: TestClient, headers: dict[str, str]) -> None:
    """A batch through the embedding model answers vectors and makes the caller's images searchable."""
    tag = uuid.uuid4().hex
    photos = {name: tagged_photo(name, tag) for name in PHOTOS}
    items = [{"image_data": b64(jpeg), "model_id": EMBED} for jpeg in photos.values()]
    r = client.post("/v1/recognize/batch", json={"items": items}, headers=headers)
    assert r.status_code == 202, r.text
    status = wait_batch_done(client, headers, r.json()["batch_id"])
    assert status["status"] == "done", status
    vectors = [np.asarray(item["embedding"]) for item in status["results"]]
    assert all(v.shape == (1280,) and abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors)
    for name, jpeg in photos.items():
        found = search(client, headers, image_data=b64(resized_copy(jpeg)), k=len(PHOTOS) + 1)["results"]
        assert found[0]["image_hash"] == sha(jpeg) and found[0]["similarity"] >= THRESHOLD, (name, found)
        assert found[0]["request_id"] in {item["request_id"] for item in status["results"]}
        assert len(found) == len(PHOTOS)


class SimilarityContract:
    """Run against a module-scoped `settings` fixture (settings of a fresh app; the blob root is file://)."""

    def test_copy_finds_its_original_and_unrelated_photos_stay_below(self, settings: Settings) -> None:
        tag = uuid.uuid4().hex
        originals = {name: tagged_photo(name, tag) for name in PHOTOS}
        with similarity_app(settings) as (client, headers):
            answers = {name: embed(client, headers, jpeg) for name, jpeg in originals.items()}
            vector = np.asarray(answers["coffee"]["embedding"])
            assert vector.shape == (1280,) and abs(np.linalg.norm(vector) - 1) < 1e-4
            assert answers["coffee"]["labels"] == []
            copy = resized_copy(originals["coffee"])
            found = search(client, headers, image_data=b64(copy), k=10)
            print("\nsimilarity of a 60% JPEG-q60 copy of coffee:", [(r["similarity"]) for r in found["results"]])
            results = found["results"]
            assert found["image_hash"] == sha(copy) and found["model_id"] == EMBED
            assert results[0]["image_hash"] == sha(originals["coffee"])
            assert results[0]["similarity"] >= THRESHOLD
            assert results[0]["request_id"] == answers["coffee"]["request_id"]
            assert len(results) == len(PHOTOS)  # the copy was not recorded: a search is not a request
            assert all(r["similarity"] < THRESHOLD for r in results[1:])
            assert [r["similarity"] for r in results] == sorted((r["similarity"] for r in results), reverse=True)
            # min_similarity keeps the original only; k bounds the list.
            near = search(client, headers, image_data=b64(copy), k=10, min_similarity=THRESHOLD)["results"]
            assert [r["image_hash"] for r in near] == [sha(originals["coffee"])]
            assert len(search(client, headers, image_data=b64(copy), k=2)["results"]) == 2
            # The same search as multipart, the copy as a file part.
            form = client.post(
                "/v1/search/similar", files={"file": ("copy.jpg", copy, "image/jpeg")}, data={"k": "1"}, headers=headers
            )
            assert form.status_code == 200, form.text
            assert [r["image_hash"] for r in form.json()["results"]] == [sha(originals["coffee"])]
            # By hash: one of the caller's images finds itself first, then the rest.
            by_hash = search(client, headers, image_hash=sha(originals["rocket"]), k=1)["results"]
            assert by_hash[0]["image_hash"] == sha(originals["rocket"]) and by_hash[0]["similarity"] > 0.99

    def test_labels_of_other_models_and_near_duplicate_hint(self, settings: Settings) -> None:
        tag = uuid.uuid4().hex
        coffee, rocket = tagged_photo("coffee", tag), tagged_photo("rocket", tag)
        with similarity_app(settings) as (client, headers):
            scene = client.post("/v1/recognize", json={"image_data": b64(coffee), "model_id": SCENE}, headers=headers)
            assert scene.status_code == 200
            assert "near_duplicates" not in scene.json() and "embedding" not in scene.json()
            embed(client, headers, coffee)
            embed(client, headers, rocket)
            copy = resized_copy(coffee, 0.5, 50)
            body = {"image_data": b64(copy), "model_id": SCENE, "near_duplicates": True}
            hinted = client.post("/v1/recognize", json=body, headers=headers)
            assert hinted.status_code == 200, hinted.text
            duplicates = hinted.json()["near_duplicates"]
            assert [d["image_hash"] for d in duplicates] == [sha(coffee)]
            assert duplicates[0]["similarity"] >= THRESHOLD
            assert duplicates[0]["labels"][SCENE][0]["label"] == "espresso"
            # The hinted copy joined the caller's images: a later search finds it beside the original.
            found = search(client, headers, image_data=b64(resized_copy(coffee, 0.7, 70)), min_similarity=THRESHOLD)
            assert {r["image_hash"] for r in found["results"]} == {sha(coffee), sha(copy)}

    def test_a_caller_never_sees_another_callers_images(self, settings: Settings) -> None:
        tag = uuid.uuid4().hex
        coffee = tagged_photo("coffee", tag)
        with similarity_app(settings) as (client, alice):
            embed(client, alice, coffee)
            bob = new_caller(client)
            assert search(client, bob, image_data=b64(coffee), k=50)["results"] == []
            r = client.post("/v1/search/similar", json={"image_hash": sha(coffee)}, headers=bob)
            assert r.status_code == 404 and r.json()["error"]["code"] == "image_not_found"
            # Bob's own copy is his: he finds it, and still never Alice's original.
            embed(client, bob, resized_copy(coffee))
            results = search(client, bob, image_data=b64(coffee), k=50)["results"]
            assert [r["image_hash"] for r in results] == [sha(resized_copy(coffee))]
            hint = client.post(
                "/v1/recognize", json={"image_data": b64(coffee), "model_id": SCENE, "near_duplicates": True},
                headers=bob,
            ).json()["near_duplicates"]
            assert [d["image_hash"] for d in hint] == [sha(resized_copy(coffee))]

    def test_bad_searches_get_clear_errors(self, settings: Settings) -> None:
        with similarity_app(settings) as (client, headers):
            cases = [
                ({}, 400, "no_image"),
                ({"image_data": b64(b"x"), "image_hash": "a" * 64}, 400, "url_and_data"),
                ({"image_hash": "not-a-hash"}, 422, "invalid_request"),
                ({"image_hash": "b" * 64, "k": 0}, 422, "invalid_request"),
                ({"image_hash": "c" * 64}, 404, "image_not_found"),
                ({"image_data": b64(b"not an image")}, 422, "not_an_image"),
            ]
            for body, status, code in cases:
                r = client.post("/v1/search/similar", json=body, headers=headers)
                assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
            assert client.post("/v1/search/similar", json={"image_hash": "c" * 64}).status_code == 401

    def test_the_index_survives_a_restart_and_is_rebuilt_when_missing(self, settings: Settings) -> None:
        tag = uuid.uuid4().hex
        photos = {name: tagged_photo(name, tag) for name in PHOTOS}
        with similarity_app(settings) as (client, headers):
            for jpeg in photos.values():
                embed(client, headers, jpeg)
        saved = index_blobs(settings)  # written at shutdown
        assert saved
        stamps = {p: p.stat().st_mtime_ns for p in saved}
        query = b64(resized_copy(photos["astronaut"]))
        with TestClient(create_app(settings)) as client:
            found = search(client, headers, image_data=query)["results"]
            assert found[0]["image_hash"] == sha(photos["astronaut"]) and len(found) == len(PHOTOS)
        # Loaded, not rebuilt: nothing changed, so nothing was written again.
        assert {p: p.stat().st_mtime_ns for p in saved} == stamps
        for path in saved:
            path.unlink()
        with TestClient(create_app(settings)) as client:
            found = search(client, headers, image_data=query)["results"]
            assert found[0]["image_hash"] == sha(photos["astronaut"]) and len(found) == len(PHOTOS)
        assert index_blobs(settings)  # the rebuilt index was written back

    def test_the_batch_path_fills_the_index(self, settings: Settings) -> None:
        with similarity_app(settings) as (client, headers):
            check_batch_fills_the_index(client, headers)
