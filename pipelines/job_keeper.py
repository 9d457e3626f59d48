"""Keeps the batch job running as asked, the way a Kubernetes operator reconciles a FlinkDeployment.

`submit_job` records the desired state `running` (with the job's options) and `cancel_job` records `stopped`, in
`<var_dir>/flink/desired-job.json`. The keeper, run by the stack's supervisor, compares that with the cluster every
few seconds: when the job should run but the cluster has none active (a restarted JobManager forgets its jobs; a
job whose restart strategy gave up is FAILED), it submits the job again from its newest retained checkpoint, as
soon as the cluster has a TaskManager. A bounded job that FINISHED is left alone. A RUNNING job whose tasks never
finish opening is cancelled, to be resubmitted the same way (see `pipelines.start_watch`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx

from pipelines.job_spec import desired, load_settings, settings_path
from pipelines.start_watch import StartWatch, restart_if_stuck
from pipelines.submit import ACTIVE_STATES, JobError, job_lock, job_status, latest_retained, launch_job, rest_url
from transforms.settings import Settings

log = logging.getLogger(__name__)


def heartbeat_path(settings: Settings) -> Path:
    """Touched by the keeper on every round (its liveness probe)."""
    return settings.var_dir / "flink" / "keeper.heartbeat"


def reconcile(settings: Settings, watch: StartWatch | None = None) -> str | None:
    """One round; the id of a job it submitted, else None. A round that finds the job being submitted or cancelled
    (the job lock taken) does nothing. With a `watch`, a RUNNING job stuck opening its tasks is cancelled."""
    with job_lock(settings, wait=False) as held:
        if not held:
            return None
        state, options = desired(settings)
        if state != "running" or options is None:
            return None
        current = job_status(settings)
        if watch is not None and current is not None and current.state == "RUNNING":
            with httpx.Client(base_url=rest_url(settings), timeout=10) as client:
                restart_if_stuck(client, watch, current.job_id)
            return None
        if current is not None and (
            current.state in ACTIVE_STATES or (options.bounded and current.state == "FINISHED")
        ):
            return None
        overview = httpx.get(f"{rest_url(settings)}/overview", timeout=5).raise_for_status().json()
        if overview["taskmanagers"] < 1 or overview["slots-available"] < 1:
            return None  # wait for a TaskManager (and for a lost job's orphaned tasks to free their slots)
        restore = latest_retained(settings)
        log.warning("batch job %s (%s); resubmitting from %s", current.state if current else "missing",
                    current.job_id if current else "no job on the cluster", restore or "the start (no checkpoint)")
        return launch_job(load_settings(settings_path(settings)), options, restore)


def keep(settings: Settings, interval_s: float = 2.0) -> None:
    """Reconcile forever (run by the supervisor)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per poll would bury what the keeper did
    beat = heartbeat_path(settings)
    beat.parent.mkdir(parents=True, exist_ok=True)
    watch = StartWatch(settings.job_stuck_start_s)
    while True:
        beat.touch()
        try:
            job_id = reconcile(settings, watch)
            if job_id:
                log.info("resubmitted the batch job as %s", job_id)
        except (httpx.HTTPError, JobError, OSError) as exc:
            log.info("cluster not reachable or busy: %s", exc)
        time.sleep(interval_s)
