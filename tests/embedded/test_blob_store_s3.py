"""The blob store on an `s3://` root (what the Helm chart configures), against a real S3-compatible server:
claim checks and raw outputs round-trip, references outside the root are refused, a batch runs through it, and
the server down is a 503 naming the blob store."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import fsspec
import pytest

from tests.api_helpers import api_client, photo_bytes, wait_batch_done
from tests.s3_server import s3_server
from transforms.composition import make_blob_store
from transforms.errors import RecognitionError
from transforms.settings import REPO_ROOT, Settings

BUCKET = "imgrec-blobs"
ROOT = f"s3://{BUCKET}/imgrec"


@pytest.fixture()
def s3() -> Iterator[object]:
    with s3_server() as proc:
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET)
        yield proc


def settings_for(tmp_path) -> Settings:
    return Settings(var_dir=tmp_path, model_store=REPO_ROOT / "var" / "models", blob_root=ROOT,
                    micro_batch_max_wait_ms=20, _env_file=None)  # fmt: skip


def test_blobs_round_trip_under_the_root_only(s3, tmp_path) -> None:
    store = make_blob_store(settings_for(tmp_path))
    uri = store.put("inputs/b1/0", b"claim check")
    assert uri == f"{ROOT}/inputs/b1/0" and store.get(uri) == b"claim check"
    assert fsspec.filesystem("s3", skip_instance_cache=True).cat_file(f"{BUCKET}/imgrec/inputs/b1/0") == b"claim check"
    for foreign, code in ((f"s3://{BUCKET}/elsewhere", "blob_forbidden"), (f"{ROOT}/../secret", "blob_forbidden"),
                          (f"{ROOT}/inputs/b1/missing", "blob_not_found")):  # fmt: skip
        with pytest.raises(RecognitionError) as info:
            store.get(foreign)
        assert info.value.code == code


def test_a_batch_runs_through_an_s3_blob_store_and_its_outage_is_a_503(s3, tmp_path) -> None:
    with api_client(settings_for(tmp_path)) as (client, headers):
        items = [{"image_data": base64.b64encode(photo_bytes(name, size=96)).decode(), "model_id": "tiny-rgb"}
                 for name in ("coffee", "chelsea")]  # fmt: skip
        r = client.post("/v1/recognize/batch", json={"items": items}, headers=headers)
        assert r.status_code == 202, r.text
        status = wait_batch_done(client, headers, r.json()["batch_id"])
        assert (status["status"], status["completed_count"]) == ("done", 2)
        stored = fsspec.filesystem("s3", skip_instance_cache=True).find(f"{BUCKET}/imgrec/inputs")
        assert len(stored) == 2  # the claim checks live in the bucket

        s3.kill()  # type: ignore[attr-defined]
        s3.wait(10)  # type: ignore[attr-defined]
        r = client.post("/v1/recognize/batch", json={"items": items}, headers=headers)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "blob_store_unavailable" and int(r.headers["Retry-After"]) > 0
