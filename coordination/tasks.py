"""Celery tasks: thin doors that take an id and call one domain function.

Every one is idempotent (a redelivered message finds the work done, or a live lease, and leaves),
acknowledged late, and rejected back to the queue if its worker process dies.
"""

from __future__ import annotations

from celery import shared_task

from coordination.jobs import sweeping
from coordination.jobs.dispatch import Job
from coordination.running import execution
from coordination.scheduling import flow

OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="coordination.run_task", **OPTIONS)
def run_task(task_id: int) -> None:
    execution.run_task(task_id)


@shared_task(name="coordination.land_task", **OPTIONS)
def land_task(task_id: int) -> None:
    flow.land_task(task_id)


@shared_task(name="coordination.converge_join", **OPTIONS)
def converge_join(join_id: int) -> None:
    flow.converge_join(join_id)


@shared_task(name="coordination.advance", **OPTIONS)
def advance(ticket_id: int) -> None:
    flow.advance(ticket_id)


@shared_task(name="coordination.sweep", **OPTIONS)
def sweep() -> None:
    sweeping.sweep()


BY_JOB = {Job.RUN_TASK: run_task, Job.LAND_TASK: land_task, Job.CONVERGE_JOIN: converge_join, Job.ADVANCE: advance}
