"""Submit, cancel and inspect the batch job on the Flink session cluster (Flink CLI for submission, REST for the rest).

A submission resumes from the newest retained checkpoint or savepoint under `<var_dir>/flink` unless told to
start fresh, so the micro-batch buffers and the Kafka positions survive a cancel. Submitting, cancelling and the job
keeper's resubmission hold one lock (`job_lock`), so no two of them start the job twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyflink

from pipelines.job_spec import JOB_NAME, JobOptions, record_desired, save_settings
from transforms.settings import REPO_ROOT, Settings

FLINK_BIN = Path(pyflink.__file__).parent / "bin" / "flink"
JOB_FILE = Path(__file__).with_name("flink_job.py")
# Shipped with the job, so the TaskManager runs the code of this checkout.
JOB_PACKAGES = ("pipelines", "transforms")
ACTIVE_STATES = ("INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "RECONCILING")
_JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")


class JobError(RuntimeError):
    """The cluster refused or failed an operation on the job."""


@dataclass(frozen=True)
class JobStatus:
    """The batch job as the cluster sees it."""

    job_id: str
    state: str
    start_time_ms: int
    duration_ms: int
    last_checkpoint: str | None
    checkpoints_completed: int
    web_url: str

    def to_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def rest_url(settings: Settings) -> str:
    if not settings.flink_rest_url:
        raise JobError("IMGREC_FLINK_REST_URL is not set: there is no Flink cluster to talk to")
    return settings.flink_rest_url.rstrip("/")


def checkpoint_root(settings: Settings) -> Path:
    return settings.var_dir / "flink"


def latest_retained(settings: Settings) -> Path | None:
    """The newest retained checkpoint (`chk-N`) or savepoint directory, None when there is none."""
    metadata = list(checkpoint_root(settings).glob("checkpoints/*/chk-*/_metadata"))
    metadata += checkpoint_root(settings).glob("savepoints/*/_metadata")
    if not metadata:
        return None
    return max(metadata, key=lambda p: p.stat().st_mtime).parent


def stage_job_code(settings: Settings) -> Path:
    """A folder holding copies of the job's packages, shipped with the job (`-pyfs`).

    Flink puts a shipped folder itself on the workers' PYTHONPATH, so the packages must sit one level down.
    """
    staged = settings.var_dir / "flink" / "job-code"
    shutil.rmtree(staged, ignore_errors=True)
    for package in JOB_PACKAGES:
        shutil.copytree(REPO_ROOT / package, staged / package, ignore=shutil.ignore_patterns("__pycache__"))
    return staged


def job_status(settings: Settings) -> JobStatus | None:
    """The active batch job (else the most recent one), None when the cluster never ran it."""
    url = rest_url(settings)
    with httpx.Client(timeout=10) as client:
        jobs = [j for j in _get(client, f"{url}/jobs/overview")["jobs"] if j["name"] == JOB_NAME]
        if not jobs:
            return None
        job = max(jobs, key=lambda j: (j["state"] in ACTIVE_STATES, j["start-time"]))
        checkpoints = _get(client, f"{url}/jobs/{job['jid']}/checkpoints")
    latest = (checkpoints.get("latest") or {}).get("completed") or {}
    return JobStatus(
        job_id=job["jid"],
        state=job["state"],
        start_time_ms=job["start-time"],
        duration_ms=job["duration"],
        last_checkpoint=latest.get("external_path"),
        checkpoints_completed=(checkpoints.get("counts") or {}).get("completed", 0),
        web_url=f"{url}/#/job/running/{job['jid']}/overview",
    )


@contextmanager
def job_lock(settings: Settings, wait: bool = True) -> Iterator[bool]:
    """Hold the job's lock (an flock on `<var_dir>/flink/job.lock`) for a check-then-act on the cluster's job.

    `flink run` takes seconds before the job shows on the cluster: without the lock the job keeper, seeing the job
    wanted but missing, would submit a second one meanwhile (seen: two jobs, the second waiting for slots forever).
    Yields False, without waiting, when `wait` is off and another process holds it.
    """
    path = checkpoint_root(settings) / "job.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def submit_job(
    settings: Settings,
    *,
    restore_from: Path | None = None,
    fresh: bool = False,
    options: JobOptions | None = None,
    timeout_s: float = 180.0,
) -> str:
    """Submit the job (detached) and return its id; an already active job is left alone and its id returned.

    Resumes from `restore_from`, else from the newest retained checkpoint, unless `fresh`.
    """
    options = options or JobOptions()
    with job_lock(settings):
        record_desired(settings, "running", options)
        current = job_status(settings)
        if current is not None and current.state in ACTIVE_STATES:
            return current.job_id
        return launch_job(settings, options, None if fresh else (restore_from or latest_retained(settings)), timeout_s)


def launch_job(settings: Settings, options: JobOptions, restore: Path | None, timeout_s: float = 180.0) -> str:
    """`flink run` the job, restoring from `restore` if given; its id. The caller holds `job_lock`."""
    address = rest_url(settings).split("://", 1)[-1]
    command = [str(FLINK_BIN), "run", "--detached", "--jobmanager", address,
               "-pyclientexec", sys.executable, "-pyexec", sys.executable, "-pyfs", str(stage_job_code(settings))]
    if restore is not None:
        command += ["--fromSavepoint", str(restore)]
    command += ["-py", str(JOB_FILE), "--settings-file", str(save_settings(settings)),
                "--state-dir", checkpoint_root(settings).as_uri(),
                "--checkpoint-interval-ms", str(options.checkpoint_interval_ms), "--python-mode", options.python_mode]
    if options.parallelism is not None:
        command += ["--parallelism", str(options.parallelism)]
    if options.bounded:
        command.append("--bounded")
    log_dir = settings.var_dir / "flink" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FLINK_LOG_DIR": str(log_dir),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s, check=False,
                          cwd=REPO_ROOT)
    found = _JOB_ID.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise JobError(f"flink run failed ({done.returncode}): {_tail(done.stdout + done.stderr)}")
    return found.group(1)


def cancel_job(settings: Settings, savepoint: bool = False, timeout_s: float = 120.0) -> str | None:
    """Cancel the active job (its checkpoints are retained); with `savepoint`, stop it with one first.

    Returns the savepoint path (or None), once the job is no longer running.
    """
    with job_lock(settings):
        record_desired(settings, "stopped")
        current = job_status(settings)
        if current is None or current.state not in ACTIVE_STATES:
            return None
        url = f"{rest_url(settings)}/jobs/{current.job_id}"
        location = None
        with httpx.Client(timeout=10) as client:
            if savepoint:
                target = (checkpoint_root(settings) / "savepoints").as_uri()
                trigger = _check(client.post(f"{url}/stop", json={"targetDirectory": target, "drain": False}))
                location = _await_savepoint(client, url, trigger.json()["request-id"], timeout_s)
            else:
                _check(client.patch(url, params={"mode": "cancel"}))
            deadline = time.monotonic() + timeout_s
            while _get(client, url)["state"] in ACTIVE_STATES:
                if time.monotonic() > deadline:
                    raise JobError(f"job {current.job_id} did not stop within {timeout_s:.0f}s")
                time.sleep(0.5)
    return location


def _await_savepoint(client: httpx.Client, job_url: str, request_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = _get(client, f"{job_url}/savepoints/{request_id}")
        if body["status"]["id"] == "COMPLETED":
            operation = body.get("operation") or {}
            if "failure-cause" in operation:
                raise JobError(f"savepoint failed: {_tail(json.dumps(operation['failure-cause']))}")
            return operation["location"]
        time.sleep(0.5)
    raise JobError(f"savepoint not done within {timeout_s:.0f}s")


def _get(client: httpx.Client, url: str) -> dict:
    return _check(client.get(url)).json()


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise JobError(f"Flink REST {response.request.method} {response.request.url}: "
                       f"{response.status_code} {_tail(response.text)}")
    return response


def _tail(text: str, limit: int = 3000) -> str:
    return text[-limit:].strip()
