"""When the batch job counts as ready: RUNNING, every task running, and its Kafka source holding every partition.

A job can be RUNNING while its source has not yet been handed the topic's partitions (split discovery and
assignment run after the tasks start); a batch published then sits unread. Readiness here means the source reader
has registered the per-partition offset metrics that the Kafka connector adds when it is assigned a partition, for
every partition of the batch topic, and a checkpoint has completed since (so those splits are positioned and their
positions are in the job's state).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import httpx

from pipelines.submit import JobError, job_status, rest_url
from transforms.settings import Settings

_PARTITION_METRIC = re.compile(
    r"\.KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<partition>\d+)\.currentOffset$"
)


@dataclass(frozen=True)
class Readiness:
    """Whether the job is ready, and if not, why not (a sentence naming the stage)."""

    ready: bool
    reason: str


def assigned_partitions(settings: Settings, job_id: str) -> set[int]:
    """Partitions of the batch topic that the job's Kafka source readers hold."""
    url = rest_url(settings)
    with httpx.Client(timeout=10) as client:
        vertices = client.get(f"{url}/jobs/{job_id}").raise_for_status().json()["vertices"]
        source = next(v for v in vertices if v["name"].startswith("Source:"))
        names = client.get(f"{url}/jobs/{job_id}/vertices/{source['id']}/metrics").raise_for_status().json()
    found = set()
    for metric in names:
        match = _PARTITION_METRIC.search(metric["id"])
        if match and match["topic"] == settings.batch_topic:
            found.add(int(match["partition"]))
    return found


def job_readiness(settings: Settings) -> Readiness:
    """The batch job's readiness now; never raises for a cluster that is down or busy."""
    try:
        status = job_status(settings)
        if status is None or status.state != "RUNNING":
            return Readiness(False, f"job state {status.state if status else 'NOT_SUBMITTED'}")
        url = rest_url(settings)
        tasks = httpx.get(f"{url}/jobs/{status.job_id}", timeout=10).raise_for_status().json()["vertices"]
        waiting = [v["name"] for v in tasks if v["status"] != "RUNNING"]
        if waiting:
            return Readiness(False, f"tasks not running yet: {', '.join(waiting)}")
        held = assigned_partitions(settings, status.job_id)
        missing = sorted(set(range(settings.batch_partitions)) - held)
        if missing:
            return Readiness(False, f"Kafka source has not been assigned partitions {missing} of "
                                    f"{settings.batch_topic}")
        return Readiness(True, "ready")
    except (httpx.HTTPError, JobError, KeyError, StopIteration) as exc:
        return Readiness(False, f"cluster not answering: {exc}")


def wait_ready(settings: Settings, timeout_s: float = 180.0) -> None:
    """Block until the job is ready, then until one more checkpoint has completed; JobError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    readiness = job_readiness(settings)
    while not readiness.ready:
        if time.monotonic() > deadline:
            raise JobError(f"the batch job is not ready after {timeout_s:.0f} s: {readiness.reason}")
        time.sleep(0.5)
        readiness = job_readiness(settings)
    status = job_status(settings)
    assert status is not None
    seen = status.checkpoints_completed
    while (status := job_status(settings)) is not None and status.checkpoints_completed <= seen:
        if time.monotonic() > deadline:
            raise JobError(f"the batch job completed no checkpoint within {timeout_s:.0f} s of being assigned its "
                           "partitions")
        time.sleep(0.5)
