"""What identifies the batch job on the cluster and the deployment knobs that are not service settings."""

from __future__ import annotations

from dataclasses import dataclass

JOB_NAME = "imgrec batch recognition"
CONSUMER_GROUP = "imgrec-batch-job"


@dataclass(frozen=True)
class JobOptions:
    """Knobs of one deployment of the job."""

    preprocess_parallelism: int = 2
    checkpoint_interval_ms: int = 5_000
    # Stop at the offsets that are the latest when the job starts (benchmarks, backfills); else run forever.
    bounded: bool = False
