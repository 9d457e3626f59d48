"""The `JobHealth` port over the Flink REST API.

The Kafka connector registers per-partition offset metrics on a source reader when it is assigned a partition
(`...KafkaSourceReader.topic.<topic>.partition.<n>.currentOffset`, the REST API writing the topic's dots as
underscores); the source holds every partition when those metrics exist for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

from transforms.job_health import Readiness

ACTIVE = ("INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "RECONCILING")
_PARTITION_METRIC = re.compile(
    r"\.KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<partition>\d+)\.currentOffset$"
)


def held_partitions(metric_ids: Iterable[str], topic: str) -> set[int]:
    """The partitions of `topic` that a source vertex's metrics (REST ids) show assigned to a reader."""
    wanted = topic.replace(".", "_")  # how the metric's scope spells the topic
    matches = (_PARTITION_METRIC.search(metric_id) for metric_id in metric_ids)
    return {int(m["partition"]) for m in matches if m and m["topic"].replace(".", "_") == wanted}


class FlinkJobHealth:
    """Readiness of the job named `job_name` reading `partitions` partitions of `topic`."""

    def __init__(self, rest_url: str, job_name: str, topic: str, partitions: int, timeout_s: float = 5.0) -> None:
        self.url = rest_url.rstrip("/")
        self.job_name = job_name
        self.topic = topic
        self.partitions = partitions
        self.timeout_s = timeout_s

    def readiness(self) -> Readiness:
        try:
            with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
                return self._readiness(client)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return Readiness(False, f"Flink cluster not answering: {exc}")

    def _readiness(self, client: httpx.Client) -> Readiness:
        jobs = [j for j in client.get("/jobs/overview").raise_for_status().json()["jobs"] if j["name"] == self.job_name]
        if not jobs:
            return Readiness(False, "the batch job is not on the cluster")
        job = max(jobs, key=lambda j: (j["state"] in ACTIVE, j["start-time"]))
        if job["state"] != "RUNNING":
            return Readiness(False, f"batch job {job['state']}")
        vertices = client.get(f"/jobs/{job['jid']}").raise_for_status().json()["vertices"]
        waiting = [v["name"] for v in vertices if v["status"] != "RUNNING"]
        if waiting:
            return Readiness(False, f"tasks not running yet: {', '.join(waiting)}")
        source = next((v for v in vertices if v["name"].startswith("Source:")), None)
        if source is None:
            return Readiness(False, "the batch job has no source")
        metrics = client.get(f"/jobs/{job['jid']}/vertices/{source['id']}/metrics").raise_for_status().json()
        held = held_partitions((metric["id"] for metric in metrics), self.topic)
        missing = sorted(set(range(self.partitions)) - held)
        if missing:
            return Readiness(False, f"Kafka source has not been assigned partitions {missing} of {self.topic}")
        return Readiness(True, "ready")
