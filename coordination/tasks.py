"""Celery tasks: thin doors that take an id and call one domain function (``jobs.registry``).

Every one is idempotent (a redelivered message finds the work done, or a live lease, and leaves),
acknowledged late, and rejected back to the queue if its worker process dies. Each is named
``coordination.<job>``: that is how ``CeleryDispatcher`` sends them.
"""

from __future__ import annotations

from celery import shared_task

from coordination.domain.dispatch import Job
from coordination.jobs import sweeping
from coordination.jobs.registry import job_function

OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="coordination.run_task", **OPTIONS)
def run_task(task_id: int) -> None:
    job_function(Job.RUN_TASK)(task_id)


@shared_task(name="coordination.task_finished", **OPTIONS)
def task_finished(task_id: int) -> None:
    job_function(Job.TASK_FINISHED)(task_id)


@shared_task(name="coordination.land_task", **OPTIONS)
def land_task(task_id: int) -> None:
    job_function(Job.LAND_TASK)(task_id)


@shared_task(name="coordination.converge_join", **OPTIONS)
def converge_join(join_id: int) -> None:
    job_function(Job.CONVERGE_JOIN)(join_id)


@shared_task(name="coordination.advance", **OPTIONS)
def advance(ticket_id: int) -> None:
    job_function(Job.ADVANCE)(ticket_id)


@shared_task(name="coordination.review_action", **OPTIONS)
def review_action(attempt_id: int) -> None:
    job_function(Job.REVIEW_ACTION)(attempt_id)


@shared_task(name="coordination.recover_merge", **OPTIONS)
def recover_merge(attempt_id: int) -> None:
    job_function(Job.RECOVER_MERGE)(attempt_id)


@shared_task(name="coordination.publish", **OPTIONS)
def publish(ticket_id: int) -> None:
    job_function(Job.PUBLISH)(ticket_id)


@shared_task(name="coordination.sweep", **OPTIONS)
def sweep() -> None:
    sweeping.sweep()
