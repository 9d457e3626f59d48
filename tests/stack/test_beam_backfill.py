"""The Beam backfill (RunInference) on the DirectRunner and on Prism against real PostgreSQL, Redis and Triton: the
same labels as the batch path for the same images, the batch path's rows, Parquet output, idempotent reruns."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image
from skimage import data
from sqlalchemy import select

from pipelines.beam_backfill import Backfill, choose_version, pipeline_options, request_id_for, run
from runners.deploy.tools import prism_path
from runners.stack.settings import StackSettings
from transforms.adapters.sql import tables as t
from transforms.batch_steps import BatchSteps
from transforms.composition import build_ports, migrate
from transforms.messages import BatchItemMessage
from transforms.model_registry import load_registry
from transforms.settings import REPO_ROOT, Settings

MODEL = "scene-classification"
PHOTOS = (data.coffee, data.chelsea, data.astronaut, data.rocket)


def small_images(count: int, start: int = 0) -> list[bytes]:
    """`count` distinct small JPEGs: 64 px crops of four real photographs at shifting offsets."""
    photos = [Image.fromarray(load()) for load in PHOTOS]
    out = []
    for i in range(start, start + count):
        photo, step = photos[i % len(photos)], i // len(photos)
        x, y = step % 40 * 3, step // 40 * 3  # offsets stay inside every photo for the counts used here
        crop = photo.crop((x, y, x + photo.width // 2, y + photo.height // 2)).resize((64, 64))
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def labels_by_request(steps: BatchSteps, request_ids: list[str]) -> dict[str, list[dict]]:
    res = t.inference_results
    with steps.ports.store.engine.connect() as conn:
        rows = conn.execute(select(res.c.request_id, res.c.labels).where(res.c.request_id.in_(request_ids)))
        return {row.request_id: row.labels for row in rows}


def same_labels(got: list[dict], want: list[dict]) -> bool:
    """Label for label, with scores equal to the float noise of batching the same image differently."""
    return [x["label"] for x in got] == [x["label"] for x in want] and all(
        abs(a["score"] - b["score"]) <= 1e-5 for a, b in zip(got, want, strict=True)
    )


def runner_options(runner: str) -> PipelineOptions:
    prism = prism_path(StackSettings().cache_dir)
    assert runner != "PrismRunner" or prism.exists(), f"{prism} is missing: `make test` (`imgrec deploy tools`)"
    return pipeline_options(runner, prism_location=str(prism))


# A few hundred images on the DirectRunner; fewer, other images on Prism (the same code, a portable runner).
@pytest.mark.parametrize(("runner", "count", "start"), [("DirectRunner", 240, 0), ("PrismRunner", 24, 240)])
def test_backfill_writes_the_batch_paths_labels_rows_and_parquet(
    runner: str, count: int, start: int, postgres_url: str, redis_url: str, triton_url: str, tmp_path: Path
) -> None:
    images = small_images(count, start)
    # The batch path: claim-check blobs and batch messages through the batch steps (what the Flink job runs),
    # with a cache of its own, so the backfill below has to infer every image itself.
    batch_settings = Settings(database_url=postgres_url, triton_url=triton_url, var_dir=tmp_path / "batch",
                              model_store=REPO_ROOT / "var" / "models", _env_file=None)
    migrate(postgres_url)
    batch = BatchSteps(build_ports(batch_settings))
    batch.ports.store.registry.seed(load_registry())
    blob_uris = [batch.ports.blobs.put(f"claims/{i}.jpg", image) for i, image in enumerate(images)]
    tag = tmp_path.name[-12:]
    batch_ids = [f"batch-{tag}-{i}" for i in range(count)]
    batch.run([BatchItemMessage(request_id=rid, caller_id="producer", model_id=MODEL, image_uri=uri)
               for rid, uri in zip(batch_ids, blob_uris, strict=True)])
    batch_labels = labels_by_request(batch, batch_ids)
    assert len(batch_labels) == count

    # The backfill: the same images as files, plus one past request (its claim check) and two bad lines.
    archive = tmp_path / "archive"
    archive.mkdir()
    references = []
    for i, image in enumerate(images):
        (archive / f"{i}.jpg").write_bytes(image)
        references.append((archive / f"{i}.jpg").as_uri())
    references.append(f"request:{batch_ids[7]}")
    bad = [(archive / "missing.jpg").as_uri(), "ftp://example.com/x.jpg"]
    manifest = tmp_path / "manifest.txt"
    manifest.write_text("\n".join([*references, *bad, ""]))
    settings = batch_settings.model_copy(update={"redis_url": redis_url, "var_dir": tmp_path / "backfill"})
    model = choose_version(batch, MODEL, None)
    job = Backfill(str(manifest), model, settings.model_dump(mode="json"), str(tmp_path / "parquet"))

    counters = run(job, runner_options(runner))

    assert counters["images_read"] == count + 1 and counters["images_failed"] == 2
    assert counters["results_stored"] == count + 1
    # Every image is inferred; the past request repeats image 7, which is a hit when its twin was cached first.
    hits = counters.get("cache_hits", 0)
    assert hits <= 1 and counters["num_inferences"] + hits == count + 1
    backfill_ids = [request_id_for(ref, model) for ref in references]
    backfill_labels = labels_by_request(batch, backfill_ids)
    expected = [batch_labels[rid] for rid in batch_ids] + [batch_labels[batch_ids[7]]]
    assert all(same_labels(backfill_labels[rid], want) for rid, want in zip(backfill_ids, expected, strict=True))
    failed = {batch.ports.store.requests.get(request_id_for(ref, model))["error_code"] for ref in bad}
    assert failed == {"blob_not_found", "bad_url"}

    table = pq.read_table(tmp_path / "parquet").to_pylist()
    assert len(table) == count + 1
    by_id = {row["request_id"]: row for row in table}
    first = by_id[backfill_ids[0]]
    assert first["image_uri"] == references[0] and (first["model_id"], first["model_version"]) == (MODEL, "1")
    cached = batch.ports.cache.get(first["image_hash"], MODEL, "1")  # the in-process cache of the batch path
    assert cached is not None and json.loads(first["labels"]) == [label.to_dict() for label in cached.labels]

    # A rerun: every image is now a hit in Redis, and the rows stay as they are.
    again = run(job, runner_options(runner))
    assert again["cache_hits"] == count + 1 and again["results_stored"] == count + 1
    assert labels_by_request(batch, backfill_ids) == backfill_labels
    batch.close()
