"""A task's run and what follows it, in the worker that ran it: its landing, then a task the landing released.

Each step used to be a job of its own: the run handed the landing to the ``git`` queue, the landing handed
the next run to the ``agents`` queue. Every hand-over is a broker round trip and a worker's pick-up, and a
chain paid two of them per task on top of the merge. The worker that just recorded a task's outcome is
free and holds the clone, so it lands the task itself, converges a join the task completed, and claims a
child that landing released (the push then goes to the queue, off the next task's way). Nothing is taken from
the queues: the released tasks and joins are handed over as jobs too, whoever gets to one first takes it
(a claim and a join's start are conditional), and a worker that dies here leaves the sweep what it always
had: a task to land, a join to converge, a task ready or claimed under a lease that lapses.
"""

from __future__ import annotations

from collections.abc import Sequence

from coordination.models import Join, Task
from coordination.running import execution
from coordination.running.execution import Claimed
from coordination.scheduling.landing import converge_join, task_finished

RELAY_LIMIT = 20  # tasks one job runs in a row; a longer chain goes on through the queue


def run_task(task_id: int) -> None:
    """Run the task and land it, then carry on with a task its landing released, up to ``RELAY_LIMIT`` in all."""
    recorded = execution.run_task(task_id)
    for hop in range(1, RELAY_LIMIT + 1):
        if not recorded:
            return
        claimed = land_and_claim_next(task_id, claim_next=hop < RELAY_LIMIT)
        if claimed is None:
            return
        task_id, recorded = claimed.task.pk, execution.carry_out(claimed)


def land_and_claim_next(task_id: int, claim_next: bool = True) -> Claimed | None:
    """Land the finished task; with ``claim_next``, claim a task it released (None: none, or another
    worker claimed it first)."""
    claimed: list[Claimed | None] = []

    def claim_released(ready: Sequence[int] | None) -> bool:
        if claim_next and not claimed:
            claimed.append(claim_released_by(task_id, ready))
        return bool(claimed and claimed[0])

    task_finished(task_id, released=claim_released)
    claim_released(None)  # the landing never got there: another delivery had landed the task already
    return claimed[0] if claimed else None


def claim_released_by(task_id: int, ready: Sequence[int] | None = None) -> Claimed | None:
    """Claim the first of ``ready`` (the tasks the landing made ready) that no other worker took. None:
    not known; then a join the task completed is converged, and the first ready child (by id) claimed."""
    if ready is None:
        for join_id in Join.objects.filter(sources=task_id, status="synthesizing").values_list("pk", flat=True):
            converge_join(join_id)  # a no-op when a worker took the join's job first
        children = Task.objects.filter(depends_on=task_id, status="ready").order_by("pk")
        ready = list(children.values_list("pk", flat=True))
    for child_id in ready:
        claimed = execution.claim_task(child_id)
        if claimed is not None:
            return claimed
    return None
