"""Handing jobs to workers, always after the transaction that made them due has committed.

Two ways: Celery (the servers: daphne + workers on any number of hosts) and a thread pool inside the
process (``dagmerge run``, for scripts and CI). Both call the same domain functions, by job name.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection, transaction

log = logging.getLogger(__name__)


class Queue(enum.StrEnum):
    AGENTS = "agents"  # task runs: minutes to hours
    GIT = "git"  # merges and scheduling: seconds


class Job(enum.StrEnum):
    RUN_TASK = "run_task"
    LAND_TASK = "land_task"
    CONVERGE_JOIN = "converge_join"
    ADVANCE = "advance"

    @property
    def queue(self) -> Queue:
        return Queue.AGENTS if self is Job.RUN_TASK else Queue.GIT


def job_function(job: Job) -> Callable[[int], object]:
    from coordination.running import execution
    from coordination.scheduling import flow

    return {
        Job.RUN_TASK: execution.run_task,
        Job.LAND_TASK: flow.land_task,
        Job.CONVERGE_JOIN: flow.converge_join,
        Job.ADVANCE: flow.advance,
    }[job]


class CeleryDispatcher:
    def submit(self, job: Job, object_id: int) -> None:
        from coordination import tasks

        celery_task = tasks.BY_JOB[job]
        transaction.on_commit(lambda: celery_task.apply_async((object_id,), queue=job.queue.value))


class ThreadDispatcher:
    """Runs jobs on a pool of threads in this process; ``wait_idle`` tells when nothing is left."""

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dagmerge")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, job: Job, object_id: int) -> None:
        # Counted when handed over, not before: a rolled-back transaction hands nothing over. The
        # committing thread is itself a counted job (or the caller), so the count never dips to 0 early.
        transaction.on_commit(lambda: self._hand_over(job, object_id))

    def _hand_over(self, job: Job, object_id: int) -> None:
        with self._idle:
            self._pending += 1
        self.pool.submit(self._run, job, object_id)

    def _run(self, job: Job, object_id: int) -> None:
        close_old_connections()
        try:
            job_function(job)(object_id)
        except Exception:
            log.exception("job %s(%s) failed", job, object_id)
        finally:
            connection.close()
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_dispatcher: CeleryDispatcher | ThreadDispatcher | None = None


def use(dispatcher: CeleryDispatcher | ThreadDispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def current() -> CeleryDispatcher | ThreadDispatcher:
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = ThreadDispatcher(2) if settings.DAGMERGE_DISPATCH == "threads" else CeleryDispatcher()
    return _dispatcher


def submit(job: Job, object_id: int) -> None:
    current().submit(job, object_id)
