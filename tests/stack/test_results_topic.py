"""Answers on the results topic, on the real stack: a plain Kafka producer (kafka-python, not the project's code)
writes items and reads their answers back with a `read_committed` consumer; dead letters are answered; a batch's
completion event comes once; a TaskManager killed mid-batch changes none of it (Flink's transactional sink)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

from kafka import KafkaConsumer, KafkaProducer

from runners.stack.install import ensure_kafka_tools
from tests.api_helpers import api_client, photo_bytes, photo_variants, submit_batch
from tests.job_helpers import ResultsReader, job_failovers, wait_completed
from transforms.settings import Settings

SCENE = "scene-classification"


def claim(settings: Settings, name: str, data: bytes) -> str:
    """Put an image where the job's blob store reads (a plain file under its file:// root), as a producer would."""
    path = Path(urlparse(settings.resolved_blob_root).path) / "test-claims" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def produce(settings: Settings, records: list[tuple[str, bytes]]) -> None:
    """Write raw (key, value) records to the batch topic with a plain kafka-python producer."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for key, value in records:
        producer.send(settings.batch_topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()


def item(request_id: str, caller: str, uri: str, **extra: object) -> bytes:
    return json.dumps({"schema": "imgrec.batch_item/v1", "request_id": request_id, "caller_id": caller,
                       "model_id": SCENE, "image_uri": uri, **extra}).encode()


def answers(messages: list[dict], prefix: str) -> list[dict]:
    return [m for m in messages if m["type"] == "result" and m["request_id"].startswith(prefix)]


def test_a_plain_producer_gets_labelled_answers_and_a_failed_one_for_a_malformed_message(job) -> None:
    settings, _ = job
    run = uuid.uuid4().hex[:8]
    caller, prefix = f"acme-{run}", f"plain-{run}"
    photos = photo_variants(3) + photo_variants(2, "chelsea")
    records = [(caller, item(f"{prefix}-{i}", caller, claim(settings, f"{prefix}-{i}.jpg", data),
                             confidence_threshold=0.05, min_label_count=1))
               for i, data in enumerate(photos)]
    records.append((caller, item(f"{prefix}-text", caller, claim(settings, f"{prefix}-text.jpg", b"not an image"))))
    malformed = json.dumps({"schema": "imgrec.batch_item/v1", "request_id": f"{prefix}-bad", "caller_id": caller,
                            "model_id": SCENE, "image_uri": "", "colour": "blue"})
    records.append((caller, malformed.encode()))
    reader = ResultsReader(settings)
    try:
        began = time.monotonic()
        produce(settings, records)
        messages = reader.read_until(lambda ms: len(answers(ms, prefix)) >= len(records))
        print(f"\n{len(records)} items from a plain producer answered on the results topic in "
              f"{time.monotonic() - began:.1f}s (read_committed; checkpoints every 1 s)")
        keys = {m["request_id"]: key for key, m in reader.records if m["type"] == "result"}
    finally:
        reader.close()
    got = {m["request_id"]: m for m in answers(messages, prefix)}
    assert len(got) == len(records) == len(answers(messages, prefix))
    assert {keys[rid] for rid in got} == {caller.encode()}  # keyed by caller_id, like the batch topic
    for i in range(5):
        answer = got[f"{prefix}-{i}"]
        assert (answer["status"], answer["caller_id"], answer["model_id"], answer["error"]) == (
            "done", caller, SCENE, None)
        assert answer["model_version"] == "1" and answer["threshold_applied"] is not None
        assert all(label["score"] >= answer["threshold_applied"] for label in answer["labels"])
    assert [got[f"{prefix}-{i}"]["labels"][0]["label"] for i in range(3)] == ["espresso"] * 3
    assert all("cat" in got[f"{prefix}-{i}"]["labels"][0]["label"] for i in (3, 4))
    text = got[f"{prefix}-text"]
    assert (text["status"], text["error"]["code"], text["labels"]) == ("failed", "not_an_image", [])
    bad = got[f"{prefix}-bad"]
    assert (bad["status"], bad["caller_id"], bad["error"]["code"]) == ("failed", caller, "invalid_message")
    assert "image_uri" in bad["error"]["message"] and "colour" in bad["error"]["message"]
    assert _dead_letter_of(settings, malformed) is not None


def test_each_batch_completion_event_arrives_once_with_its_counts(job) -> None:
    settings, _ = job
    reader = ResultsReader(settings)
    try:
        with api_client(settings) as (client, headers):
            batch_ids = []
            for count in (3, 2):
                images = [base64.b64encode(img).decode() for img in photo_variants(count, "chelsea")]
                items = [{"image_data": data, "model_id": SCENE} for data in images]
                # Its header passes the API's check; decoding it in the job fails (image_truncated).
                items.append({"image_data": base64.b64encode(photo_bytes()[:3000]).decode(), "model_id": SCENE})
                r = client.post("/v1/recognize/batch", json={"items": items}, headers=headers)
                assert r.status_code == 202, r.text
                batch_ids.append(r.json()["batch_id"])

        def events(ms: list[dict]) -> list[dict]:
            return [m for m in ms if m["type"] == "batch.completed" and m["batch_id"] in batch_ids]

        messages = reader.read_until(lambda ms: len(events(ms)) >= 2)
        # Anything that would follow a completion event (a replayed answer, a second event) arrives with the answers
        # written after it; read a little longer so such a message would be seen.
        time.sleep(3)
        messages = reader.read_until(lambda ms: True)
    finally:
        reader.close()
    done = events(messages)
    assert sorted(e["batch_id"] for e in done) == sorted(batch_ids)  # one event per batch
    for event in done:
        results = [m for m in messages if m["type"] == "result" and m["batch_id"] == event["batch_id"]]
        by_status = Counter(m["status"] for m in results)
        assert len(results) == event["total_count"] == event["completed_count"] + event["failed_count"]
        assert (by_status["done"], by_status["failed"]) == (event["completed_count"], event["failed_count"])
        assert (event["status"], event["failed_count"], event["rejected_count"]) == ("partially_failed", 1, 0)
        assert [m["error"]["code"] for m in results if m["status"] == "failed"] == ["image_truncated"]
    assert sorted(e["total_count"] for e in done) == [3, 4]


def test_after_a_taskmanager_kill_mid_batch_every_answer_is_read_once(job, test_stack) -> None:
    settings, store = job
    taskmanager = test_stack.stack["flink-taskmanager"]
    reader, uncommitted = ResultsReader(settings), ResultsReader(settings, "read_uncommitted")
    try:
        with api_client(settings) as (client, headers):
            batch_id = submit_batch(client, headers, photo_variants(120, "astronaut"), SCENE)
            wait_completed(store, batch_id, 20)
        restarts, supervised = job_failovers(settings), taskmanager.restarts()
        pid = taskmanager.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        done_at_kill = store.batches.summary(batch_id).completed_count
        assert done_at_kill < 120, "the batch finished before the kill"
        deadline = time.monotonic() + 120
        while taskmanager.restarts() == supervised or not taskmanager.healthy():  # the stack's supervisor restarts it
            assert time.monotonic() < deadline, "the TaskManager did not come back"
            time.sleep(0.2)

        def complete(ms: list[dict]) -> bool:
            return any(m["type"] == "batch.completed" and m["batch_id"] == batch_id for m in ms)

        messages = reader.read_until(complete, timeout_s=300)
        time.sleep(3)
        messages = reader.read_until(lambda ms: True)
        everything = uncommitted.read_until(complete)
    finally:
        reader.close()
        uncommitted.close()
    assert job_failovers(settings) > restarts, "the job did not fail over after the kill"
    per_request = Counter(m["request_id"] for m in messages if m["type"] == "result" and m["batch_id"] == batch_id)
    assert len(per_request) == 120 and set(per_request.values()) == {1}, per_request.most_common(3)
    events = [m for m in messages if m["type"] == "batch.completed" and m["batch_id"] == batch_id]
    assert len(events) == 1 and (events[0]["completed_count"], events[0]["status"]) == (120, "done")
    # Evidence of the replay: the records of the aborted transaction, which only read_uncommitted shows.
    repeated = sum(m["type"] == "result" and m["batch_id"] == batch_id for m in everything) - 120
    print(f"\nTaskManager killed at {done_at_kill} of 120 done; read_committed: every answer once, one completion "
          f"event; read_uncommitted also saw {repeated} repeated answers (aborted transaction)")


def _dead_letter_of(settings: Settings, raw: str) -> dict | None:
    consumer = KafkaConsumer(settings.dead_letter_topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    try:
        return next((json.loads(m.value) for m in consumer if json.loads(m.value)["message"] == raw), None)
    finally:
        consumer.close()



def test_the_sync_path_writes_its_answers_to_the_topic_only_when_asked(stack_settings: Settings) -> None:
    body = {"image_data": base64.b64encode(photo_bytes("coffee", size=200)).decode(), "model_id": SCENE}
    answered = {}
    reader = ResultsReader(stack_settings)
    try:
        for asked in (False, True):
            settings = stack_settings.model_copy(update={"sync_results_to_topic": asked})
            with api_client(settings) as (client, headers):  # the app's shutdown flushes the background writers
                answered[asked] = client.post("/v1/recognize", json=body, headers=headers).json()
        messages = reader.read_until(lambda ms: any(m.get("request_id") == answered[True]["request_id"] for m in ms))
    finally:
        reader.close()
    written = next(m for m in messages if m.get("request_id") == answered[True]["request_id"])
    assert (written["status"], written["caller_id"], written["batch_id"]) == ("done", "tester", None)
    # The API leaves out a classifier's box; the topic's schema writes every field (null).
    assert [{**label, "bounding_box": None} for label in answered[True]["labels"]] == written["labels"]
    assert written["labels"][0]["label"] == "espresso"
    # Same caller, same partition, written before the second: it would have been read first.
    assert not any(m.get("request_id") == answered[False]["request_id"] for m in messages)


def test_the_readme_walk_through_with_kafkas_console_producer_and_consumer(job, test_stack) -> None:
    settings, _ = job
    bin_dir = ensure_kafka_tools(test_stack.stack.settings, say=lambda _: None)
    run = uuid.uuid4().hex[:8]
    caller, request_id = f"console-{run}", f"console-{run}-0"
    line = f"{caller}|" + item(request_id, caller, claim(settings, f"{request_id}.jpg", photo_bytes())).decode()
    produced = subprocess.run(
        [bin_dir / "kafka-console-producer.sh", "--bootstrap-server", settings.kafka_bootstrap,
         "--topic", settings.batch_topic, "--property", "parse.key=true", "--property", "key.separator=|"],
        input=line + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert produced.returncode == 0, produced.stderr
    reader = ResultsReader(settings)
    try:
        reader.read_until(lambda ms: any(m.get("request_id") == request_id for m in ms))
    finally:
        reader.close()
    consumed = subprocess.run(
        [bin_dir / "kafka-console-consumer.sh", "--bootstrap-server", settings.kafka_bootstrap,
         "--topic", settings.results_topic, "--from-beginning", "--isolation-level", "read_committed",
         "--property", "print.key=true", "--property", "key.separator=|", "--timeout-ms", "10000"],
        capture_output=True, text=True, timeout=120, check=False)
    mine = [json.loads(out.split("|", 1)[1]) for out in consumed.stdout.splitlines() if out.startswith(f"{caller}|")]
    assert [(m["request_id"], m["status"], m["labels"][0]["label"]) for m in mine] == [
        (request_id, "done", "espresso")], consumed.stderr[-2000:]
