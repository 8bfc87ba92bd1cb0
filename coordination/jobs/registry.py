"""Which function each job runs: the one module that imports every job's domain function."""

from __future__ import annotations

from collections.abc import Callable

from coordination.domain.dispatch import Job
from coordination.review import actions as review_actions
from coordination.scheduling import landing, publishing, relay, scheduler

JOBS: dict[Job, Callable[[int], object]] = {
    Job.RUN_TASK: relay.run_task,
    Job.LAND_TASK: landing.land_task,
    Job.CONVERGE_JOIN: landing.converge_join,
    Job.ADVANCE: scheduler.advance,
    Job.REVIEW_ACTION: review_actions.carry_out_review,
    Job.RECOVER_MERGE: landing.recover_merge,
    Job.PUBLISH: publishing.publish_ticket,
}


def job_function(job: Job) -> Callable[[int], object]:
    return JOBS[job]
