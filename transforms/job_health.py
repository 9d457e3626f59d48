"""Whether the batch job can make progress: the port the stall watch and `stack up` ask.

The job counts as ready when it is RUNNING, every task runs, and its Kafka source holds every partition of the
batch topic (a job can be RUNNING before its source is handed the partitions; a batch published then sits
unread). The adapter asks the Flink REST API (`transforms/adapters/flink.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

JOB_NAME = "imgrec batch recognition"
CONSUMER_GROUP = "imgrec-batch-job"


@dataclass(frozen=True)
class Readiness:
    """Whether the job is ready, and if not, why not (a sentence naming the stage)."""

    ready: bool
    reason: str


class JobHealth(Protocol):
    def readiness(self) -> Readiness:
        """The job's readiness now; never raises (a cluster that does not answer is a reason)."""
        ...
