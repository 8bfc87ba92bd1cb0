"""Handing jobs to workers, always after the transaction that made them due has committed.

Two ways: Celery (the servers: daphne + workers on any number of hosts) and a thread pool inside the
process (``dagmerge run``, for scripts and CI). Both call the same domain functions, by job name.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import current_app
from celery.signals import task_prerun
from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction

from coordination.domain.dispatch import Job
from coordination.jobs.registry import job_function

log = logging.getLogger(__name__)



class CeleryDispatcher:
    """Sends a job by its Celery task name (``coordination.<job>``, see ``coordination.tasks``)."""

    def submit(self, job: Job, object_id: int) -> None:
        transaction.on_commit(lambda: current_app.send_task(f"coordination.{job.value}", (object_id,),
                                                            queue=job.queue.value))


def keep_database_connections(**_signal) -> None:
    """A Celery worker process keeps its database connection from job to job (on ``worker_process_init``).

    Opening one per job forked a PostgreSQL backend and ran a SCRAM exchange (about 10 ms, more under
    load) on every hop of a release: a task's end, its landing, the next task's claim. Each job of this
    process then starts with ``check_database_connection``: a connection a PostgreSQL restart broke is
    replaced there, not failed on. Celery's own fixup closes it every ``CELERY_DB_REUSE_MAX`` jobs.
    """
    for alias in connections:
        connections[alias].settings_dict.update(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=True)
    task_prerun.connect(check_database_connection, dispatch_uid="dagmerge-check-connection")


def check_database_connection(**_signal) -> None:
    """Before a job: the next query first checks that the kept connection still answers (one round trip)."""
    close_old_connections()


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



def default_dispatcher() -> CeleryDispatcher | ThreadDispatcher:
    """Celery with the servers; a small thread pool when DAGMERGE_DISPATCH says ``threads``."""
    return ThreadDispatcher(2) if settings.DAGMERGE_DISPATCH == "threads" else CeleryDispatcher()
