"""Every file of a corpus of odd and broken images (`tests/odd_images.py`) through the sync and the batch path:
no 5xx, every refusal a 4xx with its code and sentence, and the service still answering afterwards."""

from __future__ import annotations

import base64
import collections
from pathlib import Path

import pytest

from tests.api_helpers import api_client, photo_bytes, wait_batch_done
from tests.odd_images import odd_images
from transforms.errors import STATUS_BY_CODE
from transforms.settings import REPO_ROOT, Settings

MODEL = "tiny-rgb"  # the image handling is under test, not a model
IMAGE_CODES = {"not_an_image", "unsupported_format", "image_truncated", "image_corrupt", "too_many_pixels",
               "image_too_large"}  # fmt: skip


@pytest.fixture(scope="module")
def corpus() -> list[Path]:
    files = odd_images()
    assert len(files) > 900, "the corpus is not what this test was written against"
    return files


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("odd-images"),
        model_store=REPO_ROOT / "var" / "models",
        rate_limit_per_s=100_000.0,
        rate_limit_burst=100_000,
        micro_batch_max_wait_ms=20,
        _env_file=None,
    )
    with api_client(settings) as pair:
        yield pair


def test_every_odd_file_is_answered_or_refused_with_a_code_on_the_sync_path(client, corpus: list[Path]) -> None:
    c, headers = client
    codes: collections.Counter[str] = collections.Counter()
    for path in corpus:
        r = c.post("/v1/recognize", headers=headers, data={"model_id": MODEL},
                   files={"file": (path.name, path.read_bytes(), "application/octet-stream")})  # fmt: skip
        assert r.status_code < 500, f"{path.name}: {r.status_code} {r.text}"
        if r.status_code == 200:
            codes["answered"] += 1
            assert r.json()["labels"], path.name
            continue
        error = r.json()["error"]
        assert error["code"] in IMAGE_CODES and error["message"], f"{path.name}: {r.text}"
        assert r.status_code == STATUS_BY_CODE[error["code"]], f"{path.name}: {r.text}"
        codes[error["code"]] += 1
    # Each family of trouble is in the corpus, so a decoder change that turns one of them into a 500 is caught.
    assert codes["answered"] > 400 and all(codes[code] for code in IMAGE_CODES - {"image_too_large"}), codes
    # Pillow raises NotImplementedError for DDS textures in formats it does not decode: that was once a 500.
    dds = next(p for p in corpus if p.name == "unimplemented_dxgi_format.dds")
    r = c.post("/v1/recognize", headers=headers, data={"model_id": MODEL}, files={"file": ("x.dds", dds.read_bytes())})
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_format")
    ok = c.post("/v1/recognize", headers=headers, data={"model_id": MODEL},
                files={"file": ("ok.jpg", photo_bytes("coffee", size=64))})  # fmt: skip
    assert ok.status_code == 200


def test_every_odd_file_ends_done_or_failed_with_a_code_on_the_batch_path(client, corpus: list[Path]) -> None:
    c, headers = client
    small = [p for p in corpus if p.stat().st_size <= 2 * 1024 * 1024]
    items = [{"image_data": base64.b64encode(p.read_bytes()).decode(), "model_id": MODEL} for p in small]
    r = c.post("/v1/recognize/batch", json={"items": items}, headers=headers)
    assert r.status_code == 202, r.text
    accepted = r.json()
    for rejection in accepted["rejected"]:  # refused from the header at submission
        assert rejection["code"] in IMAGE_CODES and rejection["message"], rejection
    status = wait_batch_done(c, headers, accepted["batch_id"], timeout_s=300)
    assert status["status"] == "partially_failed"
    assert status["completed_count"] + status["failed_count"] == accepted["accepted_count"] > 400
    for result in status["results"]:  # decoded past the header in the job: failed items carry the image's code
        if result.get("error"):
            assert result["error"]["code"] in IMAGE_CODES, result
    assert c.post("/v1/recognize", headers=headers, data={"model_id": MODEL},
                  files={"file": ("ok.jpg", photo_bytes("coffee", size=64))}).status_code == 200  # fmt: skip
