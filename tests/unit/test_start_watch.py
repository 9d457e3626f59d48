"""The job keeper's start watch: a job attempt whose tasks stay opening past the limit is reported once."""

from __future__ import annotations

from pipelines.start_watch import Opening, StartWatch


def test_an_attempt_is_stuck_only_once_its_tasks_have_been_opening_past_the_limit() -> None:
    now = [0.0]
    watch = StartWatch(limit_s=60, clock=lambda: now[0])
    opening = Opening("job-a", started_ms=1_000, tasks=("Store results",))
    assert watch.check(opening) is None  # first seen: its clock starts
    now[0] = 59
    assert watch.check(opening) is None
    now[0] = 61
    assert watch.check(opening) == 61


def test_tasks_that_finish_opening_or_a_new_attempt_start_the_clock_again() -> None:
    now = [0.0]
    watch = StartWatch(limit_s=60, clock=lambda: now[0])
    assert watch.check(Opening("job-a", 1_000, ("Map",))) is None
    now[0] = 50
    assert watch.check(Opening("job-a", 1_000, ())) is None  # every task runs
    now[0] = 70
    assert watch.check(Opening("job-a", 1_000, ("Map",))) is None, "the clock restarted when the tasks ran"
    now[0] = 100
    assert watch.check(Opening("job-a", 9_000, ("Map",))) is None, "a failover is a new attempt with its own clock"
    now[0] = 150
    assert watch.check(Opening("job-a", 9_000, ("Map",))) is None
    now[0] = 161
    assert watch.check(Opening("job-a", 9_000, ("Map",))) == 61
    assert watch.check(Opening("job-b", 9_000, ("Map",))) is None, "another job is another attempt"
