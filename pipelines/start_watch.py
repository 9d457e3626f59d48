"""A batch job whose tasks never finish opening: noticed, logged with the stuck threads' stacks, and restarted.

A task is INITIALIZING while its operators open; for the Python operators (thread mode) that is their set-up inside
the TaskManager's JVM: unpickling the functions, importing their modules, building their ports. An open that hangs
there (seen now and then in a TaskManager's first seconds, inside pemja's `PythonInterpreter.exec`) ignores cancel,
and nothing in Flink notices: the job stays RUNNING with its source unassigned, and batches sit in Kafka.

The job keeper watches for it. A job attempt (one job id and its latest start) with tasks still INITIALIZING after
`Settings.job_stuck_start_s` is logged with those tasks' Java stacks from the TaskManager's thread dump, then
cancelled. Threads that ignore the cancel make the TaskManager's cancellation watchdog (`task.cancellation.timeout`)
end that TaskManager, its supervisor starts a fresh one, and the keeper resubmits the job from its newest retained
checkpoint: exactly once holds as after any failover (transactional sinks, idempotent progress writes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)
STACK_LINES = 12  # of each stuck thread's dump: enough to show where it waits


@dataclass(frozen=True)
class Opening:
    """The tasks of one job attempt that are still opening."""

    job_id: str
    started_ms: int  # when this attempt began RUNNING (a failover starts a new attempt)
    tasks: tuple[str, ...]


def opening_tasks(client: httpx.Client, job_id: str) -> Opening:
    """The job's vertices with a subtask INITIALIZING, from GET /jobs/{id}."""
    job = client.get(f"/jobs/{job_id}").raise_for_status().json()
    tasks = tuple(v["name"] for v in job["vertices"] if v.get("tasks", {}).get("INITIALIZING", 0) > 0)
    return Opening(job_id, int(job.get("timestamps", {}).get("RUNNING", 0)), tasks)


def stuck_stacks(client: httpx.Client, tasks: tuple[str, ...]) -> list[str]:
    """The head of each stuck task thread's stack, from every TaskManager's thread dump."""
    stacks = []
    for manager in client.get("/taskmanagers").raise_for_status().json()["taskmanagers"]:
        dump = client.get(f"/taskmanagers/{manager['id']}/thread-dump").raise_for_status().json()
        for thread in dump.get("threadInfos", []):
            if thread["threadName"].startswith(tasks):
                head = thread["stringifiedThreadInfo"].strip().splitlines()[:STACK_LINES]
                stacks.append(f"[{manager['id']}] " + "\n    ".join(head))
    return stacks


class StartWatch:
    """Tells when a job attempt's tasks have been opening longer than `limit_s` (seen by successive `check`s)."""

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self.clock = clock
        self._since: tuple[tuple[str, int], float] | None = None

    def check(self, opening: Opening) -> float | None:
        """Seconds this attempt's tasks have been opening, once that is over the limit; else None."""
        if not opening.tasks:
            self._since = None
            return None
        attempt = (opening.job_id, opening.started_ms)
        if self._since is None or self._since[0] != attempt:
            self._since = (attempt, self.clock())
            return None
        waited = self.clock() - self._since[1]
        return waited if waited > self.limit_s else None


def restart_if_stuck(client: httpx.Client, watch: StartWatch, job_id: str) -> bool:
    """One look at a RUNNING job: cancel it (logging why and where its tasks wait) when its start is stuck."""
    opening = opening_tasks(client, job_id)
    waited = watch.check(opening)
    if waited is None:
        return False
    stacks = stuck_stacks(client, opening.tasks)
    log.warning("batch job %s: tasks still opening after %.0f s (%s); cancelling it so that its TaskManager is "
                "replaced and the job resubmitted from its newest checkpoint. Where they wait:\n  %s", job_id, waited,
                "; ".join(opening.tasks), "\n  ".join(stacks) or "no thread dump")
    client.patch(f"/jobs/{job_id}", params={"mode": "cancel"}).raise_for_status()
    watch.check(Opening(job_id, opening.started_ms, ()))  # a later attempt starts its own clock
    return True
