"""What identifies the batch job on the cluster and the deployment knobs that are not service settings."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from transforms.job_health import CONSUMER_GROUP, JOB_NAME  # noqa: F401  (the job's identity, re-exported)
from transforms.settings import Settings


@dataclass(frozen=True)
class JobOptions:
    """Knobs of one deployment of the job."""

    # Subtasks of every operator (source, keyed state, sinks), Kafka partitions and keys split among them; None:
    # the cluster's `parallelism.default` (the Flink Kubernetes Operator sets it, and its autoscaler overrides it).
    parallelism: int | None = None
    checkpoint_interval_ms: int = 5_000
    # Python operators inside the TaskManager JVM (`thread`, the fastest measured: README, Benchmarks) or in worker
    # processes (`process`).
    python_mode: str = "thread"
    # Stop at the offsets that are the latest when the job starts (benchmarks, backfills); else run forever.
    bounded: bool = False


def settings_path(settings: Settings) -> Path:
    """Where the job's settings live while it runs (under the var dir, which the TaskManager shares here)."""
    return settings.var_dir / "flink" / "job-settings.json"


def save_settings(settings: Settings) -> Path:
    """Write the settings for the job, readable by this user only.

    The job gets this file's path, never the settings themselves: database and Redis URLs may carry passwords,
    which must not appear on a command line, in the job's arguments or in the Flink UI.
    """
    path = settings_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(settings.model_dump_json())
    path.with_suffix(".tmp").replace(path)
    return path


def load_settings(path: str | Path | None) -> Settings:
    """The settings `save_settings` wrote; without a file, IMGREC_* from the environment (the job's pods under the
    Flink Kubernetes Operator get their settings that way, secrets by reference)."""
    return Settings.model_validate_json(Path(path).read_text()) if path else Settings()


def desired_path(settings: Settings) -> Path:
    """Where `submit_job` and `cancel_job` record what the job keeper should keep (see pipelines.job_keeper)."""
    return settings.var_dir / "flink" / "desired-job.json"


def record_desired(settings: Settings, state: str, options: JobOptions | None = None) -> None:
    """Write the desired state of the job: `running` (with its options) or `stopped`."""
    path = desired_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"state": state, "options": asdict(options) if options else None}))
    tmp.replace(path)


def desired(settings: Settings) -> tuple[str, JobOptions | None]:
    """The recorded desired state; `stopped` when nothing was recorded."""
    try:
        data = json.loads(desired_path(settings).read_text())
    except (OSError, ValueError):
        return "stopped", None
    options = data.get("options")
    if not options:
        return data["state"], None
    # Options an older version recorded and this one no longer has (preprocess_parallelism) are dropped.
    return data["state"], JobOptions(**{k: v for k, v in options.items() if k in JobOptions.__dataclass_fields__})
