"""The job keeper and the job's lock: a resubmission never races a submission or a cancel."""

from __future__ import annotations

from pipelines.job_keeper import reconcile
from pipelines.job_spec import JobOptions, record_desired
from pipelines.submit import job_lock
from runners.stack.ports import free_ports
from transforms.settings import Settings


def test_the_lock_is_held_by_one_holder_at_a_time(settings: Settings) -> None:
    with job_lock(settings) as first:
        assert first is True
        with job_lock(settings, wait=False) as second:
            assert second is False
    with job_lock(settings, wait=False) as again:
        assert again is True


def test_the_keeper_keeps_out_while_the_job_is_being_submitted(settings: Settings) -> None:
    # Nothing answers at this URL: a keeper that looked at the cluster would raise.
    settings = settings.model_copy(update={"flink_rest_url": f"http://127.0.0.1:{free_ports(1)[0]}"})
    record_desired(settings, "running", JobOptions())
    with job_lock(settings):
        assert reconcile(settings) is None
    record_desired(settings, "stopped")
    assert reconcile(settings) is None, "a stopped job is left stopped"
