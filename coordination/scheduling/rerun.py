"""Re-running what failed on a failed ticket: every failed task is retried, each the way a person would
retry it by hand (``operations.retry_task``), so each is its own operation with its own events."""

from __future__ import annotations

from dataclasses import dataclass, field

from coordination.models import Ticket
from coordination.scheduling import operations


@dataclass
class RerunPreview:
    ticket: Ticket
    retries: list[operations.RetryPreview] = field(default_factory=list)  # one per failed task
    problems: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.problems and any(r.allowed for r in self.retries)


def preview_rerun(ticket_id: int) -> RerunPreview:
    """What re-running the failed tasks of ``ticket_id`` puts back to work, task by task."""
    ticket = Ticket.objects.get(pk=ticket_id)
    failed = list(ticket.tasks.filter(status="failed").order_by("id").values_list("pk", flat=True))
    preview = RerunPreview(ticket, [operations.preview_retry(pk) for pk in failed])
    if ticket.status != "failed":
        preview.problems.append(f"ticket #{ticket.pk} is {ticket.get_status_display()}, not failed")
    if not failed:
        preview.problems.append("no task of this ticket failed: it failed in a merge; see its merges")
    return preview


def rerun_failed_tasks(ticket_id: int, user) -> list[str]:
    """Retry every failed task that can be retried; returns their keys. Raises OperationRefused (with
    every reason) when none could be; the ones that could are retried even if others are refused."""
    preview = preview_rerun(ticket_id)
    if preview.problems:
        raise operations.OperationRefused(preview.problems)
    retried, refused = [], []
    for retry in preview.retries:
        try:
            operations.retry_task(retry.task.pk, user)
        except operations.OperationRefused as exc:
            refused += exc.problems
        else:
            retried.append(retry.task.key)
    if not retried:
        raise operations.OperationRefused(refused)
    return retried
