"""Job names, their queues, and handing a job over: the leaf every layer calls to enqueue work.

Which dispatcher runs the jobs (Celery workers, or a thread pool inside this process) is installed from
above (``coordination.jobs.dispatchers``, when the app loads); this module knows only the names, so the
scheduler can enqueue without importing what the jobs run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol


class Queue(enum.StrEnum):
    AGENTS = "agents"  # task runs: minutes to hours
    GIT = "git"  # merges and scheduling: seconds


class Job(enum.StrEnum):
    RUN_TASK = "run_task"
    LAND_TASK = "land_task"
    CONVERGE_JOIN = "converge_join"
    ADVANCE = "advance"
    REVIEW_ACTION = "review_action"  # a reviewer's approve / retry / drop (MergeAttempt id)
    RECOVER_MERGE = "recover_merge"  # a merge attempt whose merger died (MergeAttempt id)
    PUBLISH = "publish"  # push ticket/<id> back to the source (Ticket id)

    @property
    def queue(self) -> Queue:
        return Queue.AGENTS if self is Job.RUN_TASK else Queue.GIT


class Dispatcher(Protocol):
    def submit(self, job: Job, object_id: int) -> None:
        """Hand the job over once the current transaction commits (at once outside one)."""


_dispatcher: Dispatcher | None = None
_default: Callable[[], Dispatcher] | None = None


def use(dispatcher: Dispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def install_default(factory: Callable[[], Dispatcher]) -> None:
    """What ``current`` builds when nothing was chosen: set once when the app loads."""
    global _default
    _default = factory


def current() -> Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        if _default is None:
            raise RuntimeError("no job dispatcher installed: is the coordination app loaded?")
        _dispatcher = _default()
    return _dispatcher


def submit(job: Job, object_id: int) -> None:
    current().submit(job, object_id)
