"""Which function each job runs: the one module that imports every job's domain function."""

from __future__ import annotations

from collections.abc import Callable

from coordination.domain.dispatch import Job
from coordination.running import execution
from coordination.scheduling import landing, scheduler

JOBS: dict[Job, Callable[[int], object]] = {
    Job.RUN_TASK: execution.run_task,
    Job.TASK_FINISHED: landing.task_finished,
    Job.LAND_TASK: landing.land_task,
    Job.CONVERGE_JOIN: landing.converge_join,
    Job.ADVANCE: scheduler.advance,
}


def job_function(job: Job) -> Callable[[int], object]:
    return JOBS[job]
