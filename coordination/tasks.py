"""Celery tasks: thin doors, one per job, each taking an id and calling its domain function
(``jobs.registry``), named ``coordination.<job>`` — how ``CeleryDispatcher`` sends them.

Every one is idempotent (a redelivered message finds the work done, or a live lease, and leaves),
acknowledged late, and rejected back to the queue if its worker process dies.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import shared_task

from coordination.domain.dispatch import Job
from coordination.jobs import sweeping
from coordination.jobs.registry import job_function

OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


def _door(job: Job) -> Callable[[int], None]:
    def door(object_id: int) -> None:
        job_function(job)(object_id)

    door.__name__ = door.__qualname__ = job.value
    return shared_task(name=f"coordination.{job.value}", **OPTIONS)(door)


DOORS = {job: _door(job) for job in Job}


@shared_task(name="coordination.sweep", **OPTIONS)
def sweep() -> None:
    sweeping.sweep()
