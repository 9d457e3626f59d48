"""Scale-out on one machine: a Flink session cluster of two TaskManagers runs the batch job at parallelism 2 (each
TaskManager holds half of the keyed state), one TaskManager is SIGKILLed mid-batch, and once the stack's supervisor
has it back the batch ends with every item answered exactly once.

The cluster is a private one (its own root, supervisor, ports, topics and var dir) beside the session's PostgreSQL,
Redis, Kafka and Triton, so the session's job and cluster are untouched and no second set of services starts.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient

from pipelines.submit import cancel_job, job_status
from runners.kafka_topics import ensure_topics, wanted_topics
from runners.stack.ports import free_ports
from runners.stack.stack import Stack
from tests.api_helpers import api_client, submit_batch, unique_images
from tests.conftest import TestStack
from tests.db_helpers import stored_results
from tests.job_helpers import ResultsReader, job_failovers, wait_completed
from transforms.adapters.sql import SqlStore
from transforms.model_registry import load_registry
from transforms.settings import Settings

SCENE = "scene-classification"
TASKMANAGERS = ("flink-taskmanager", "flink-taskmanager-2")
CLUSTER = ("flink-jobmanager", *TASKMANAGERS)  # all it starts and stops: the other services are the session's
FLINK_PORTS = ("flink_rest_port", "flink_rpc_port", "flink_metrics_port", "flink_jobmanager_metrics_port",
               "flink_taskmanager_metrics_port", "flink_extra_taskmanager_metrics_port")


@pytest.fixture
def scaled_out(test_stack: TestStack, stack_settings: Settings, stack_root: Path) -> Iterator[Stack]:
    """A private Flink cluster of two one-slot TaskManagers running the job at parallelism 2 on topics of its own."""
    run = uuid.uuid4().hex[:8]
    settings = test_stack.stack.settings.model_copy(update={
        "root": stack_root, "flink_taskmanagers": 2, "flink_parallelism": 2, "flink_slots": 1,
        "triton_repository": test_stack.stack.settings.triton_repository_dir,
        **dict(zip(FLINK_PORTS, free_ports(len(FLINK_PORTS)), strict=True)),
    })
    app = stack_settings.model_copy(update={
        "var_dir": stack_root / "var", "batch_topic": f"scale-{run}", "dead_letter_topic": f"scale-{run}.dlq",
        "results_topic": f"scale-{run}.results",
    })
    stack = Stack(settings, app)
    admin = KafkaAdminClient(bootstrap_servers=app.kafka_bootstrap)
    try:
        ensure_topics(admin, wanted_topics(app))
        store = SqlStore.from_url(app.resolved_database_url)
        store.registry.seed(load_registry())
        store.close()
        stack.start(CLUSTER)
        stack.submit_job()
        yield stack
    finally:
        try:
            cancel_job(stack.app_settings)
        finally:
            stack.stop(CLUSTER)
            admin.delete_topics(list(wanted_topics(app)))
            admin.close()


def placement(settings: Settings) -> dict[str, tuple[int, set[str]]]:
    """Each operator chain of the running job: its parallelism and the TaskManagers its subtasks run on."""
    rest, job_id = settings.flink_rest_url, job_status(settings).job_id
    vertices = httpx.get(f"{rest}/jobs/{job_id}", timeout=10).raise_for_status().json()["vertices"]
    return {
        vertex["name"]: (vertex["parallelism"], {
            tm["taskmanager-id"] for tm in httpx.get(f"{rest}/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers",
                                                     timeout=10).raise_for_status().json()["taskmanagers"]
        })
        for vertex in vertices
    }


def registration(settings: Settings, name: str) -> dict | None:
    """The JobManager's entry of the TaskManager with this resource id."""
    managers = httpx.get(f"{settings.flink_rest_url}/taskmanagers", timeout=10).raise_for_status().json()
    return next((tm for tm in managers["taskmanagers"] if tm["id"] == name), None)


def test_a_taskmanager_killed_mid_batch_loses_and_doubles_nothing(scaled_out: Stack) -> None:
    settings = scaled_out.app_settings
    keyed = {name: where for name, where in placement(settings).items() if "Cache lookup" in name or "Answers" in name}
    assert keyed and all(where == (2, set(TASKMANAGERS)) for where in keyed.values()), keyed

    # Every fifth image comes twice: the copy waits behind its first (in-flight dedup) or hits the cache.
    distinct = unique_images(300)
    images = [img for i, img in enumerate(distinct) for _ in range(1 + (i % 5 == 4))]
    total = len(images)
    reader = ResultsReader(settings)
    victim = scaled_out[TASKMANAGERS[1]]
    try:
        with api_client(settings) as (client, headers):
            store = client.app.state.services.store
            batch_id = submit_batch(client, headers, images, SCENE)
            wait_completed(store, batch_id, 20, timeout_s=180)
            before, first_run = job_failovers(settings), registration(settings, victim.name)
            os.killpg(victim.pid(), signal.SIGKILL)
            killed = time.monotonic()
            done_at_kill = store.batches.summary(batch_id).completed_count
            assert done_at_kill < total, "the batch ended before the kill: nothing was tested"
            # The stack's supervisor restarts it; the new process registers under the same id from a new port.
            while (now := registration(settings, victim.name)) is None or now["dataPort"] == first_run["dataPort"]:
                assert time.monotonic() < killed + 120, "the TaskManager did not come back"
                time.sleep(0.2)
            back = time.monotonic() - killed

            def completed(messages: list[dict]) -> bool:
                return any(m["type"] == "batch.completed" and m["batch_id"] == batch_id for m in messages)

            reader.read_until(completed, timeout_s=300)
            ended = time.monotonic() - killed
            time.sleep(3)  # a replayed answer or a second completion event would arrive within this
            messages = reader.read_until(lambda _: True)
            summary = store.batches.summary(batch_id)
            rows = stored_results(store, batch_id)
    finally:
        reader.close()
    print(f"\n2 TaskManagers, parallelism 2: one killed at {done_at_kill}/{total} done; back (registered) after "
          f"{back:.1f}s, batch done {ended:.1f}s after the kill")
    assert victim.restarts() == 1 and job_failovers(settings) > before, "no supervised restart, or no failover"
    assert (summary.status, summary.completed_count, summary.failed_count) == ("done", total, 0), summary
    assert len(rows) == total and Counter(results for results, _ in rows.values()) == {1: total}
    answers = Counter(m["request_id"] for m in messages if m["type"] == "result" and m["batch_id"] == batch_id)
    assert len(answers) == total and set(answers.values()) == {1}, answers.most_common(3)
    events = [m for m in messages if m["type"] == "batch.completed" and m["batch_id"] == batch_id]
    assert [(e["completed_count"], e["status"]) for e in events] == [(total, "done")]
    assert placement(settings)[next(iter(keyed))] == (2, set(TASKMANAGERS))  # spread over both again
