"""Fault injection on the running stack: each component killed (SIGKILL of its process group) mid-batch, and Triton
stalled for 10 s, while work is still unread in Kafka. The stack's supervisor restarts what died, the job keeper
resubmits a job the cluster lost, and every batch still ends with every item done exactly once.

For each fault: nothing lost (every item done), nothing doubled (one result row per item), progress counts never
move backwards, no cache hit reported (every image is new to the cache, so a hit could only be a replay finding its
own first attempt), the completion webhook delivered once; its recovery times go to the table pytest prints at the
end of the session (`pytest_terminal_summary` in tests/conftest.py).

Run alone with `pytest -m faults`. One stack (the session's), small batches, faults one after another.
"""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from pipelines.job_spec import settings_path
from pipelines.submit import job_status
from runners.stack.components.api import Api
from runners.stack.components.base import Component
from runners.stack.ports import free_ports
from tests.api_helpers import unique_images
from tests.conftest import RECOVERY, STUCK_START_S, TestStack
from tests.db_helpers import stored_results
from tests.webhook_receiver import Received, webhook_receiver
from transforms.adapters.sql import SqlStore
from transforms.settings import Settings
from transforms.store import StoreUnavailable

pytestmark = pytest.mark.faults
SCENE = "scene-classification"
ITEMS = 96  # three micro-batches of 32: the sinks progress in steps a fault can fall between
BATCH_TIMEOUT_S = 300


class CallbackApi(Api):
    """The stack's API process, allowed to call the test's webhook receiver on loopback."""

    name = "api-faults"


@pytest.fixture(scope="module")
def api(test_stack: TestStack, job: tuple[Settings, SqlStore]) -> Iterator[tuple[CallbackApi, dict[str, str]]]:
    settings, store = job
    stack_settings = test_stack.stack.settings.model_copy(update={"api_port": free_ports(1)[0]})
    component = CallbackApi(stack_settings, settings.model_copy(update={"fetch_allow_hosts": ["127.0.0.1"]}))
    component.start()
    try:
        yield component, {"Authorization": f"Bearer {store.keys.create('faults')}"}
    finally:
        component.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, Received]]:
    with webhook_receiver() as pair:
        yield pair


@dataclass
class Progress:
    """Samples of a batch's (completed, failed) counts read straight from PostgreSQL, in the background."""

    store: SqlStore
    batch_id: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                summary = self.store.batches.summary(self.batch_id)
            except StoreUnavailable:
                continue  # PostgreSQL itself is the fault: a gap in the samples
            if summary is not None:
                self.samples.append((time.monotonic(), summary.completed_count, summary.failed_count))

    def latest(self) -> tuple[int, int]:
        return self.samples[-1][1:] if self.samples else (0, 0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def first_progress_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first sample with more items finished than at `moment`."""
        before = max((c + f for ts, c, f in self.samples if ts <= moment), default=0)
        return next((ts - moment for ts, c, f in self.samples if ts > moment and c + f > before), None)

    def rate(self, start: float, end: float) -> float:
        """Items finished per second between two moments."""
        inside = [(ts, c + f) for ts, c, f in self.samples if start <= ts <= end]
        if len(inside) < 2:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / max(inside[-1][0] - inside[0][0], 1e-6)


def submit(api: CallbackApi, headers: dict[str, str], images: list[bytes], hook: str) -> str:
    items = [{"image_data": base64.b64encode(b).decode(), "model_id": SCENE} for b in images]
    r = httpx.post(f"{api.url}/v1/recognize/batch", json={"items": items, "callback_url": hook}, headers=headers,
                   timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["batch_id"]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def kill(component: Component) -> float:
    """SIGKILL the component's whole process group; the moment it happened."""
    pid = component.pid()
    assert pid is not None, f"{component.name} is not running"
    os.killpg(pid, signal.SIGKILL)
    return time.monotonic()


def came_back(component: Component, killed_pid: int | None, restarts_before: int) -> bool:
    """The supervisor started a new process for the component (a new pid, one more restart) and it is healthy."""
    pid = component.pid()
    return pid is not None and pid != killed_pid and component.restarts() > restarts_before and component.healthy()


def check_batch(store: SqlStore, batch_id: str, progress: Progress, received: Received, count: int) -> None:
    """Nothing lost, nothing doubled, counts monotonic, no false cache hit, webhook once."""
    summary = store.batches.summary(batch_id)
    assert (summary.status, summary.completed_count, summary.failed_count) == ("done", count, 0), summary
    per_request = stored_results(store, batch_id)
    assert len(per_request) == count
    assert Counter(results for results, _ in per_request.values()) == {1: count}, "an item without or with two results"
    assert sum(hits for _, hits in per_request.values()) == 0, "a replay reported its own first attempt as a cache hit"
    for (_, c0, f0), (_, c1, f1) in zip(progress.samples, progress.samples[1:], strict=False):
        assert c1 >= c0 and f1 >= f0, f"progress went backwards: {c0} -> {c1}, failed {f0} -> {f1}"
    wait_for(lambda: any(batch_id.encode() in body for _, body in received.deliveries), 60, "the webhook")
    time.sleep(2.5)  # a second delivery, if any, would come within the dispatcher's next polls
    assert sum(batch_id.encode() in body for _, body in received.deliveries) == 1, "webhook not delivered once"


BEFORE_THE_READ = "before the read"


@dataclass(frozen=True)
class Fault:
    component: str
    point: str  # before the read | right after the write | during inference | during the sinks

    def __str__(self) -> str:
        return f"{self.component} killed {self.point}"


FAULTS = [
    Fault("kafka", "right after the write"),  # the API needs Kafka to accept the batch: killed once it has
    Fault("flink-jobmanager", BEFORE_THE_READ),
    Fault("flink-taskmanager", "during inference"),
    Fault("triton", "during inference"),
    Fault("redis", "during the sinks"),
    Fault("postgres", "during the sinks"),
    Fault("api-faults", "during the sinks"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_killed_component_loses_nothing_and_doubles_nothing(fault: Fault, test_stack: TestStack, job, api,
                                                              receiver, record_property) -> None:
    _, store = job
    api_component, headers = api
    hook, received = receiver
    component = api_component if fault.component == api_component.name else test_stack.stack[fault.component]
    restarts_before, killed_pid = component.restarts(), component.pid()
    if fault.point == BEFORE_THE_READ:  # the batch arrives in Kafka while the component is down
        killed = kill(component)
    batch_id = submit(api_component, headers, unique_images(ITEMS), hook)
    progress = Progress(store, batch_id)
    try:
        if fault.point == "during inference":
            wait_for(lambda: _processing(store, batch_id) > 0, 120, "items sent to inference")
        elif fault.point == "during the sinks":
            wait_for(lambda: progress.latest()[0] > 0, 120, "items stored")
        done_at_kill = progress.latest()[0]
        if fault.point != BEFORE_THE_READ:
            killed = kill(component)
        wait_for(lambda: came_back(component, killed_pid, restarts_before), 120,
                 f"{component.name} to come back as a new, healthy process")
        back = time.monotonic() - killed
        wait_for(lambda: progress.latest()[0] + progress.latest()[1] >= ITEMS, BATCH_TIMEOUT_S, "the batch to end")
        ended = time.monotonic() - killed
    finally:
        progress.stop()
    record_property(RECOVERY, {
        "fault": str(fault), "done at the fault": f"{done_at_kill}/{ITEMS}", "component back": round(back, 1),
        "restarts": component.restarts() - restarts_before,
        "progress again": _round(progress.first_progress_after(killed)), "batch done": round(ended, 1),
    })
    check_batch(store, batch_id, progress, received, ITEMS)
    assert done_at_kill < ITEMS, "the batch ended before the fault: nothing was tested"


def test_a_ten_second_triton_stall_is_ridden_out_inside_the_job(test_stack: TestStack, job, api, receiver,
                                                                record_property) -> None:
    _, store = job
    api_component, headers = api
    hook, received = receiver
    settings, _ = job
    triton = test_stack.stack["triton"]
    job_before = _job_restarts(settings)
    triton_restarts_before = triton.restarts()
    count = 1_200  # at ~90 images/s the batch outlasts the 3 s of flow before the stall, with room to spare
    batch_id = submit(api_component, headers, unique_images(count), hook)
    progress = Progress(store, batch_id)
    try:
        wait_for(lambda: progress.latest()[0] >= 40, 120, "the batch to flow")
        flowing = time.monotonic()
        time.sleep(3)
        stalled = time.monotonic()
        done_at_stall = progress.latest()[0]
        os.killpg(triton.pid(), signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            os.killpg(triton.pid(), signal.SIGCONT)
        resumed_at = time.monotonic()
        wait_for(triton.healthy, 60, "Triton to answer again")
        back = time.monotonic() - stalled
        wait_for(lambda: sum(progress.latest()) >= count, BATCH_TIMEOUT_S, "the batch to end")
        ended = time.monotonic()
    finally:
        progress.stop()
    before, during = progress.rate(flowing, stalled), progress.rate(stalled + 1, resumed_at)
    after = progress.rate(resumed_at, ended)
    record_property(RECOVERY, {
        "fault": "triton stalled 10 s (SIGSTOP) during inference", "done at the fault": f"{done_at_stall}/{count}",
        "component back": round(back, 1), "restarts": triton.restarts() - triton_restarts_before,
        "progress again": _round(None if (r := progress.first_progress_after(resumed_at)) is None else r + 10),
        "batch done": round(ended - stalled, 1),
        "images/s before, during, after": f"{before:.1f}, {during:.1f}, {after:.1f}",
    })
    check_batch(store, batch_id, progress, received, count)
    assert done_at_stall < count, "the batch ended before the stall: nothing was tested"
    assert during < before / 2, "the stall did not stall anything"
    assert _job_restarts(settings) == job_before, f"the stall was not ridden out inside the operators: " \
        f"{_last_failure(settings, job_before[0])}"


@pytest.mark.stuck_start
def test_a_job_stuck_opening_its_tasks_is_restarted_by_the_keeper(test_stack: TestStack, job, api, receiver,
                                                                  record_property) -> None:
    """A hung operator set-up (here: every operator's open blocked reading a FIFO nobody writes) ignores cancel and
    leaves the job RUNNING with nothing read; the keeper cancels it, the TaskManager's cancellation watchdog ends the
    TaskManager, and the keeper resubmits the job from its newest checkpoint."""
    settings, store = job
    api_component, headers = api
    hook, received = receiver
    taskmanager, keeper = test_stack.stack["flink-taskmanager"], test_stack.stack["flink-job-keeper"]
    path = settings_path(settings)
    saved = path.read_text()
    batch_id = submit(api_component, headers, unique_images(ITEMS), hook)
    progress = Progress(store, batch_id)
    try:
        wait_for(lambda: progress.latest()[0] > 0, 120, "items stored")
        done_at_fault = progress.latest()[0]
        path.unlink()
        os.mkfifo(path, 0o600)
        restarts = taskmanager.restarts()
        try:
            killed = kill(taskmanager)  # its replacement's operators hang in open, reading the FIFO
            wait_for(lambda: _job_state(settings) in ("CANCELLING", "CANCELED"),
                     STUCK_START_S + 120, "the keeper to cancel the stuck job")
            cancelled = time.monotonic() - killed
        finally:
            # A regular file again, for the keeper's resubmission; the hung readers keep the FIFO they opened.
            tmp = path.with_suffix(".restore")
            tmp.write_text(saved)
            tmp.replace(path)
        wait_for(lambda: taskmanager.restarts() >= restarts + 2 and taskmanager.healthy(), 120,
                 "the cancellation watchdog to end the hung TaskManager and the supervisor to replace it")
        replaced = time.monotonic() - killed
        wait_for(lambda: sum(progress.latest()) >= ITEMS, BATCH_TIMEOUT_S, "the batch to end")
        ended = time.monotonic() - killed
    finally:
        progress.stop()
    record_property(RECOVERY, {
        "fault": "every operator's open hung after a TaskManager kill", "done at the fault": f"{done_at_fault}/{ITEMS}",
        "component back": round(replaced, 1), "restarts": taskmanager.restarts() - restarts,
        "progress again": _round(progress.first_progress_after(killed)), "batch done": round(ended, 1),
        "keeper cancelled": round(cancelled, 1),
    })
    check_batch(store, batch_id, progress, received, ITEMS)
    assert "tasks still opening after" in keeper.log_tail(400), "the keeper did not say what it found"
    assert done_at_fault < ITEMS, "the batch ended before the fault: nothing was tested"


def _job_state(settings: Settings) -> str | None:
    status = job_status(settings)
    return status.state if status else None


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _processing(store: SqlStore, batch_id: str) -> int:
    summary = store.batches.summary(batch_id)
    return summary.processing + summary.completed_count if summary else 0


def _last_failure(settings: Settings, job_id: str) -> str:
    """The job's latest failure as Flink's exception history has it (what restarted it)."""
    history = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}/exceptions", timeout=10).json()
    entries = history.get("exceptionHistory", {}).get("entries", [])
    return entries[0].get("stacktrace", "")[:3000] if entries else "no exception in the job's history"


def _job_restarts(settings: Settings) -> tuple[str, int]:
    """The running batch job's id and how often it restarted (Flink's numRestarts)."""
    status = job_status(settings)
    assert status is not None
    url = f"{settings.flink_rest_url}/jobs/{status.job_id}/metrics"
    # The JobManager's metric fetcher answers [] until its first fetch after a (re)start.
    deadline = time.monotonic() + 30
    while not (metric := httpx.get(url, params={"get": "numRestarts"}, timeout=10).json()):
        assert time.monotonic() < deadline, f"no numRestarts metric for job {status.job_id}"
        time.sleep(1)
    return status.job_id, int(float(metric[0]["value"]))
