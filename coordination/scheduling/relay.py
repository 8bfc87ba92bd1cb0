"""A task's run and what follows it, in the worker that ran it: its landing, then a task the landing released.

Each step used to be a job of its own: the run handed the landing to the ``git`` queue, the landing handed
the next run to the ``agents`` queue. Every hand-over is a broker round trip and a worker's pick-up, and a
chain paid two of them per task on top of the merge. The worker that just recorded a task's outcome is
free and holds the clone, so it lands the task itself, converges a join the task completed, and claims a
child that landing released (the push then goes to the queue, off the next task's way).

That child is claimed in the transaction that makes it ready, and no job is handed out for it: a job sent
for it set the other worker slot racing for the claim (a broker message, a pick-up and a conditional
UPDATE that loses), on the two cores the release shares with the database, and the task is never ready
without an owner. The other tasks and joins it released are handed out as jobs as ever, whoever gets to
one first takes it (a claim and a join's start are conditional). A worker that dies here leaves the sweep
what it always had: a task to land, a join to converge, a task claimed under a lease that lapses.
"""

from __future__ import annotations

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
    landed = task_finished(task_id, take=execution.claim_within if claim_next else None)
    if landed.handed_out or not claim_next:
        return landed.claimed
    return claim_released_by(task_id)


def claim_released_by(task_id: int) -> Claimed | None:
    """A task that is a join's source converges the join it completed; one that another delivery landed
    released its children then: the first (by id) that is still ready is claimed."""
    claimed = None
    for join_id in Join.objects.filter(sources=task_id, status="synthesizing").values_list("pk", flat=True):
        # a no-op when a worker took the join's job first
        claimed = converge_join(join_id, take=None if claimed else execution.claim_within).claimed or claimed
    if claimed is not None:
        return claimed
    for child_id in Task.objects.filter(depends_on=task_id, status="ready").order_by("pk").values_list("pk", flat=True):
        claimed = execution.claim_task(child_id)
        if claimed is not None:
            return claimed
    return None
