"""What answering on the results topic costs: exactly-once (Kafka transactions) against at-least-once, same run.

One private stack on free ports; for each `IMGREC_RESULTS_DELIVERY` the job is submitted fresh (checkpoints every
`--checkpoint-ms`, 5 s by default as in production), then:
- latency: `--singles` items written one at a time by a plain kafka-python producer, each timed from the send to
  its answer read by a `read_committed` consumer (p50/p99), and to its row being `done` in PostgreSQL (the
  pipeline's own latency, the baseline: what the topic adds is the difference);
- throughput: `--items` items written at once, wall time from the first send to the last answer read.
Every image is new to the cache (a trailer after the JPEG end marker changes its hash). Prints a table and
writes var/bench/results.json.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from PIL import Image
from skimage import data

from benchmarks.common import load_average, print_table, private_stack, write_report
from pipelines.job_spec import JobOptions
from pipelines.submit import cancel_job, job_status, submit_job
from runners.stack.stack import SERVICES
from transforms.adapters.sql import SqlStore
from transforms.composition import make_blob_store
from transforms.model_registry import load_registry
from transforms.settings import Settings

MODES = ("at-least-once", "exactly-once")


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(data.coffee()).convert("RGB").resize((320, 213)).save(buf, format="JPEG")
    return buf.getvalue()


class Topic:
    """A plain producer on the batch topic and a read_committed consumer of the whole results topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.blobs = make_blob_store(settings)
        self.image = _jpeg()
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=0)
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed",
                                      enable_auto_commit=False, fetch_max_wait_ms=20)
        self.consumer.assign([TopicPartition(settings.results_topic, p)
                              for p in self.consumer.partitions_for_topic(settings.results_topic)])
        self.consumer.seek_to_end()

    def send(self, request_id: str) -> None:
        uri = self.blobs.put(f"bench-results/{request_id}.jpg", self.image + request_id.encode())
        item = {"schema": "imgrec.batch_item/v1", "request_id": request_id, "caller_id": "bench",
                "model_id": "scene-classification", "image_uri": uri}
        self.producer.send(self.settings.batch_topic, key=b"bench", value=json.dumps(item).encode())
        self.producer.flush()

    def answered(self, timeout_ms: int = 100) -> list[str]:
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        return [json.loads(r.value).get("request_id") for records in polled.values() for r in records]

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()


def _done_in_db(store: SqlStore, request_id: str) -> bool:
    row = store.requests.get(request_id)
    return row is not None and row["status"] == "done"


def measure(settings: Settings, store: SqlStore, mode: str, singles: int, items: int) -> dict[str, Any]:
    topic = Topic(settings)
    run = uuid.uuid4().hex[:6]
    try:
        topic.send(f"warm-{run}")  # loads the model in Triton and the job's workers
        deadline = time.monotonic() + 300
        while f"warm-{run}" not in topic.answered():
            assert time.monotonic() < deadline, "no answer to the warm-up item"
        to_answer, to_db = [], []
        for i in range(singles):
            rid = f"one-{run}-{i}"
            began = time.perf_counter()
            topic.send(rid)
            stored = None
            while True:
                if stored is None and _done_in_db(store, rid):
                    stored = time.perf_counter() - began
                if rid in topic.answered(timeout_ms=20):
                    to_answer.append(time.perf_counter() - began)
                    break
            to_db.append(stored if stored is not None else to_answer[-1])
        began = time.perf_counter()
        wanted = {f"many-{run}-{i}" for i in range(items)}
        for rid in sorted(wanted):
            topic.send(rid)
        while wanted:
            wanted.difference_update(topic.answered())
        wall = time.perf_counter() - began
    finally:
        topic.close()

    def ms(samples: list[float], q: float) -> float:
        ordered = sorted(samples)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000)

    return {
        "mode": mode,
        "answer_p50_ms": round(statistics.median(to_answer) * 1000), "answer_p99_ms": ms(to_answer, 0.99),
        "db_done_p50_ms": round(statistics.median(to_db) * 1000), "db_done_p99_ms": ms(to_db, 0.99),
        "items": items, "wall_s": round(wall, 2), "items_per_s": round(items / wall, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--checkpoint-ms", type=int, default=JobOptions.checkpoint_interval_ms)
    args = parser.parse_args(argv or [])
    results = []
    with private_stack(SERVICES) as stack:
        stack.start(list(SERVICES))
        store = SqlStore.from_url(stack.app_settings.resolved_database_url)
        store.registry.seed(load_registry())
        try:
            for mode in MODES:
                settings = stack.app_settings.model_copy(update={"results_delivery": mode})
                cancel_job(settings)
                submit_job(settings, fresh=True, options=JobOptions(checkpoint_interval_ms=args.checkpoint_ms))
                while (status := job_status(settings)) is None or status.state != "RUNNING":
                    time.sleep(0.5)
                results.append(measure(settings, store, mode, args.singles, args.items))
                cancel_job(settings)
        finally:
            store.close()
    at_least, exactly = results
    report = {
        "checkpoint_interval_ms": args.checkpoint_ms, "modes": results,
        "throughput_ratio_exactly_vs_at_least_once": round(exactly["items_per_s"] / at_least["items_per_s"], 2),
        "load_average": load_average(),
    }  # fmt: skip
    print_table(["mode", "answer p50/p99 ms", "db done p50/p99 ms", "items/s"],
                [[r["mode"], f"{r['answer_p50_ms']}/{r['answer_p99_ms']}",
                  f"{r['db_done_p50_ms']}/{r['db_done_p99_ms']}", r["items_per_s"]] for r in results])
    write_report("results", report)


if __name__ == "__main__":
    main(sys.argv[1:])
