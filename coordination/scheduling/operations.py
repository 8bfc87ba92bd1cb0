"""Operations a person runs on a ticket from the dashboard: retry a failed task, cancel a ticket.

Each is a ``preview_*`` (what would change; reads only) and a ``do``-function that re-checks the preview
under the ticket's row lock, moves every row through ``transition()`` (so each move is an Event) and hands
the scheduler an ADVANCE once the transaction has committed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from coordination.domain import dispatch, states
from coordination.domain.dispatch import Job
from coordination.models import Event, Join, OwnershipClaim, Task, Ticket
from coordination.running.leases import ticket_merge_lease
from merges.models import MergeAttempt

CANCEL_LEASE_WAIT_SECONDS = 10.0
UNFINISHED_TASKS = ("pending", "ready", "claimed", "running", "blocked", "rolled_back")
# Joins that have not merged yet: cancelling fails them, so no merge starts for a cancelled ticket. A
# merging join's merger holds the merge lease, which cancel waits for: one found merging has lost its merger.
OPEN_JOINS = ("waiting", "synthesizing", "merging", "awaiting_review")


class OperationRefused(Exception):
    """The operation cannot run; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class RetryPreview:
    """What retrying ``task`` changes downstream, before anyone confirms it."""

    task: Task
    reset: list[Task] = field(default_factory=list)  # blocked descendants: back to pending, they run again
    rejoin: list[Join] = field(default_factory=list)  # failed joins: back to waiting, they merge again
    stale: list[Join] = field(default_factory=list)  # joins that already merged without the task
    continuations: list[Task] = field(default_factory=list)  # continuations of the joins above
    ticket_reopens: bool = False  # a failed ticket goes back to running
    problems: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.problems


def preview_retry(task_id: int) -> RetryPreview:
    """Which tasks run again, which joins merge again, and why a retry is refused (``problems``)."""
    task = Task.objects.select_related("ticket").get(pk=task_id)
    ticket = task.ticket
    tasks = {t.pk: t for t in Task.objects.filter(ticket=ticket).prefetch_related("depends_on")}
    children: dict[int, list[int]] = {pk: [] for pk in tasks}
    for t in tasks.values():
        for parent in t.depends_on.all():
            children[parent.pk].append(t.pk)
    downstream = _descendants(task.pk, children)
    joins = list(Join.objects.filter(ticket=ticket).select_related("continuation").prefetch_related("sources"))

    preview = RetryPreview(task=tasks[task.pk], ticket_reopens=ticket.status == "failed")
    preview.reset = [tasks[pk] for pk in sorted(downstream) if tasks[pk].status == "blocked"]
    for join in joins:
        is_source = any(s.pk == task.pk for s in join.sources.all())
        if not is_source and join.continuation_id not in downstream:
            continue
        if join.status == "failed":
            preview.rejoin.append(join)
            preview.continuations.append(join.continuation)
        elif join.status == "merged" and is_source:
            preview.stale.append(join)
    if task.status != "failed":
        preview.problems.append(f"task {task.key} is {task.get_status_display()}: only a failed task can be retried")
    if ticket.status in states.TICKET_IDLE:
        preview.problems.append(f"ticket #{ticket.pk} is {ticket.get_status_display()}")
    for join in preview.stale:
        preview.problems.append(
            f"the join → {join.continuation.key} already merged without {task.key} ({join.merge_strategy}); "
            f"its work could no longer reach the ticket branch")
    return preview


def retry_task(task_id: int, user) -> RetryPreview:
    """Put a failed task and what its failure blocked back to work; raises OperationRefused.

    The preview is taken again under the ticket's lock: what was shown may have changed since.
    """
    with transaction.atomic():
        ticket_id = Task.objects.values_list("ticket_id", flat=True).get(pk=task_id)
        # The ticket row lock is the one ``advance`` takes: no scheduler pass runs between our moves.
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
        preview = preview_retry(task_id)
        if preview.problems:
            raise OperationRefused(preview.problems)
        by = _username(user)
        preview.task.transition("pending", event_payload={"by": by, "retry": True}, error="", finished_at=None)
        for task in preview.reset:
            task.transition("pending", event_payload={"by": by, "retry_of": preview.task.key}, error="")
        for join in preview.rejoin:
            join.transition("waiting", event_payload={"by": by, "retry_of": preview.task.key})
        if ticket.status == "failed":
            ticket.transition("running", event_payload={"by": by}, error="", finished_at=None)
        Event.record(ticket, "operation.retried", {
            "task": preview.task.key, "task_id": preview.task.pk, "by": by,
            "reset": [t.key for t in preview.reset], "joins": [j.continuation.key for j in preview.rejoin],
        })
        dispatch.submit(Job.ADVANCE, ticket.pk)
    return preview


@dataclass
class CancelPreview:
    ticket: Ticket
    cancelled: list[Task] = field(default_factory=list)  # tasks that will never run (or whose run is dropped)
    running: list[Task] = field(default_factory=list)  # their commands run on to their end; outcomes dropped
    joins: list[Join] = field(default_factory=list)  # open joins: failed, so no merge starts
    problems: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.problems


def preview_cancel(ticket_id: int) -> CancelPreview:
    ticket = Ticket.objects.get(pk=ticket_id)
    preview = CancelPreview(ticket=ticket)
    if ticket.status in states.TICKET_ENDED:
        preview.problems.append(f"ticket #{ticket.pk} is already {ticket.get_status_display()}")
        return preview
    preview.cancelled = list(ticket.tasks.filter(status__in=UNFINISHED_TASKS))
    preview.running = [t for t in preview.cancelled if t.status in ("claimed", "running")]
    preview.joins = list(ticket.joins.filter(status__in=OPEN_JOINS).select_related("continuation"))
    return preview


def cancel_ticket(ticket_id: int, user) -> CancelPreview:
    """Cancel a ticket and every task that has not finished; raises OperationRefused.

    Holds the ticket's merge lease while it does, so no merge is half-way: a merge that is running is
    waited for (briefly), and joins that have not merged are failed so none starts afterwards. A task
    command already running is stopped by its run's heartbeat (within a third of the lease) and its
    outcome dropped.
    """
    try:
        with ticket_merge_lease(ticket_id, wait_seconds=CANCEL_LEASE_WAIT_SECONDS):
            return _cancel(ticket_id, user)
    except TimeoutError:
        raise OperationRefused(["a merge is running on this ticket; cancel again when it has finished"]) from None


def _cancel(ticket_id: int, user) -> CancelPreview:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
        preview = preview_cancel(ticket_id)
        if preview.problems:
            raise OperationRefused(preview.problems)
        by = _username(user)
        for task in preview.cancelled:
            task.transition("cancelled", event_payload={"by": by}, lease_owner="", lease_expires_at=None,
                            finished_at=task.finished_at or timezone.now())
        for join in preview.joins:
            join.transition("failed", event_payload={"by": by, "reason": "ticket cancelled"})
        OwnershipClaim.objects.filter(task__ticket=ticket, released_at=None).update(released_at=timezone.now())
        MergeAttempt.objects.filter(ticket=ticket, status="running").update(
            status="failed", error="ticket cancelled", pending_action={}, finished_at=timezone.now())
        ticket.transition("cancelled", event_payload={"by": by}, finished_at=timezone.now())
    return preview


def _descendants(root: int, children: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    queue = deque(children[root])
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(children[node])
    return seen


def _username(user) -> str:
    return user.get_username() if user is not None else "cli"
