"""The PyFlink batch job on the real stack: Kafka -> Flink -> Triton -> PostgreSQL/Redis, dead letters, restarts."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from kafka import KafkaConsumer, KafkaProducer
from PIL import Image
from sqlalchemy import func, select

from pipelines.job_spec import JobOptions
from pipelines.submit import cancel_job, job_status, submit_job
from tests.api_helpers import photo_variants
from tests.conftest import JOB_SECRET
from tests.job_helpers import wait_running
from transforms.adapters.kafka import KafkaBatchQueue
from transforms.adapters.sql import SqlStore
from transforms.adapters.sql import tables as t
from transforms.composition import make_blob_store
from transforms.messages import BatchItemMessage
from transforms.settings import Settings

SCENE = "scene-classification"


def publish(settings: Settings, prefix: str, images: Sequence[bytes], start: int = 0) -> list[BatchItemMessage]:
    """Claim-check each image in the blob store and write its message straight to Kafka, as a producer would."""
    blobs = make_blob_store(settings)
    messages = []
    for i, data in enumerate(images, start):
        uri = blobs.put(f"test-claims/{prefix}/{i}.jpg", data)
        messages.append(BatchItemMessage(request_id=f"{prefix}-{i}", caller_id="producer", model_id=SCENE,
                                         image_uri=uri))
    queue = KafkaBatchQueue(settings.kafka_bootstrap, settings.batch_topic)
    try:
        queue.publish(messages)
    finally:
        queue.close()
    return messages


def rows(store: SqlStore, prefix: str) -> dict[str, dict]:
    r, res = t.inference_requests, t.inference_results
    q = (
        select(r.c.request_id, r.c.status, r.c.error_code, res.c.labels, res.c.cache_hit, res.c.model_version)
        .select_from(r.outerjoin(res, r.c.request_id == res.c.request_id))
        .where(r.c.request_id.like(f"{prefix}-%"))
    )
    with store.engine.connect() as conn:
        return {row.request_id: dict(row._mapping) for row in conn.execute(q)}


def wait_finished(store: SqlStore, prefix: str, count: int, timeout_s: float = 180) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = rows(store, prefix)
        if sum(row["status"] in ("done", "failed") for row in found.values()) >= count:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{prefix}: not finished: {[r['status'] for r in rows(store, prefix).values()]}")


def test_items_reach_done_with_correct_labels_and_repeats_come_from_the_cache(job) -> None:
    settings, store = job
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    coffees, cats = photo_variants(24), photo_variants(16, "chelsea")
    began = time.monotonic()
    publish(settings, prefix, coffees + cats)
    first = wait_finished(store, prefix, 40)
    elapsed = time.monotonic() - began
    print(f"\n40 distinct images through Kafka -> Flink -> Triton -> PostgreSQL in {elapsed:.1f}s "
          f"({40 / elapsed:.0f} images/s)")
    assert all(row["status"] == "done" and row["model_version"] == "1" for row in first.values())
    assert [first[f"{prefix}-{i}"]["labels"][0]["label"] for i in range(24)] == ["espresso"] * 24
    cat_labels = {first[f"{prefix}-{i}"]["labels"][0]["label"] for i in range(24, 40)}
    assert len(cat_labels) == 1 and "espresso" not in cat_labels

    publish(settings, prefix, coffees[:10] + cats[:10], start=40)  # the same images again
    again = wait_finished(store, prefix, 60)
    repeats = [again[f"{prefix}-{i}"] for i in range(40, 60)]
    assert all(row["status"] == "done" and row["cache_hit"] for row in repeats)
    assert [row["labels"][0]["label"] for row in repeats[:10]] == ["espresso"] * 10


def test_a_malformed_message_goes_to_the_dead_letter_topic_and_the_job_keeps_running(job) -> None:
    settings, store = job
    marker = uuid.uuid4().hex
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    bogus = json.dumps({"schema": "bogus", "marker": marker}).encode()
    producer.send(settings.batch_topic, key=b"producer", value=bogus)
    producer.flush()
    producer.close()
    prefix = f"after-dlq-{marker[:8]}"
    publish(settings, prefix, [_solid_jpeg()])

    consumer = KafkaConsumer(settings.dead_letter_topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    deadline, letter = time.monotonic() + 60, None
    while letter is None and time.monotonic() < deadline:
        letter = next((json.loads(m.value) for m in consumer if marker.encode() in m.value), None)
    consumer.close()
    assert letter is not None, "no dead letter"
    assert "invalid batch item" in letter["reason"] and "schema" in letter["reason"]
    assert json.loads(letter["message"])["marker"] == marker
    assert wait_finished(store, prefix, 1)[f"{prefix}-0"]["status"] == "done"
    assert job_status(settings).state == "RUNNING"


def test_cancel_mid_batch_and_restart_from_the_retained_checkpoint_finishes_everything_once(job) -> None:
    settings, store = job
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    # Every fifth image comes twice in a row: a cancel is likely to find the copy parked behind its first one
    # (in-flight dedup), so the parked state must come back from the checkpoint too.
    distinct = photo_variants(500, "astronaut")
    images = [img for i, img in enumerate(distinct) for _ in range(1 + (i % 5 == 4))]
    total = len(images)
    publish(settings, prefix, images)
    deadline = time.monotonic() + 120
    while sum(r["status"] == "done" for r in rows(store, prefix).values()) < 30:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.1)
    cancel_job(settings)
    done_at_cancel = sum(r["status"] == "done" for r in rows(store, prefix).values())
    assert done_at_cancel < total, "the batch finished before the cancel: nothing left to resume"
    assert job_status(settings).last_checkpoint is not None

    submit_job(settings, options=JobOptions(checkpoint_interval_ms=1000))  # resumes from the newest checkpoint
    wait_running(settings)
    finished = wait_finished(store, prefix, total)
    assert all(row["status"] == "done" for row in finished.values())
    res = t.inference_results
    with store.engine.connect() as conn:
        per_request = conn.execute(
            select(res.c.request_id, func.count()).where(res.c.request_id.like(f"{prefix}-%"))
            .group_by(res.c.request_id)
        ).all()
    assert len(per_request) == total and {count for _, count in per_request} == {1}
    print(f"\ncancelled at {done_at_cancel} of {total} done; cache hits: "
          f"{sum(bool(row['cache_hit']) for row in finished.values())}")


def _solid_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_no_secret_on_a_command_line_in_the_job_arguments_or_the_flink_ui(job) -> None:
    settings, _ = job
    assert JOB_SECRET in settings.resolved_database_url
    rest = settings.flink_rest_url
    job_id = job_status(settings).job_id
    pages = [f"/jobs/{job_id}", f"/jobs/{job_id}/config", f"/jobs/{job_id}/plan", "/jobmanager/config",
             f"/jobs/{job_id}/exceptions"]
    managers = httpx.get(f"{rest}/taskmanagers", timeout=10).json()["taskmanagers"]
    pages += [f"/taskmanagers/{tm['id']}" for tm in managers]
    for page in pages:
        r = httpx.get(f"{rest}{page}", timeout=10)
        assert r.status_code == 200 and JOB_SECRET not in r.text, page
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert JOB_SECRET.encode() not in cmdline, pid


def test_the_taskmanager_imported_the_jobs_modules_once_as_its_interpreter_started(job, test_stack) -> None:
    """Its operators then open with every module cached, none importing concurrently (pipelines/taskmanager_site)."""
    log = test_stack.stack["flink-taskmanager"].log_path.read_text(errors="replace")
    assert "imgrec: imported the batch job's modules in" in log
    assert "were not imported at interpreter start" not in log
