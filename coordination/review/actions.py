"""The doors' side of a review: build the plan for the ticket, let ``merges.review`` act, then release
the continuation the same way an automatic merge does (``landing.record_merge_outcome``)."""

from __future__ import annotations

from coordination.models import Event, Task
from coordination.running import workspace
from coordination.scheduling import landing, leases
from coordination.scheduling.plans import merge_plan
from coordination.scheduling.spending import charge_llm
from merges import review
from merges.models import MergeAttempt


def _context(attempt_id: int):
    attempt = MergeAttempt.objects.select_related("ticket", "join").get(pk=attempt_id)
    ticket = attempt.ticket
    tasks = list(Task.objects.filter(ticket=ticket, key__in=[i["name"] for i in attempt.incoming]))
    return attempt, ticket, tasks, workspace.clone_git(ticket.repository_id)


def approve(attempt_id: int, user) -> MergeAttempt:
    """Raises review.GateClosed with the problems when the server-side gate is closed."""
    attempt, ticket, tasks, git = _context(attempt_id)
    problems = review.gate_problems(attempt)
    if problems:  # refused cheaply; review.approve checks again under the row lock
        raise review.GateClosed(problems)
    with leases.ticket_merge_lease(ticket.pk):
        ticket.refresh_from_db()
        plan = merge_plan(ticket, tasks)
        plan.current_head = ticket.head_sha
        attempt = review.approve(git, attempt_id, user, plan)
        Event.record(ticket, "review.approved", {"attempt_id": attempt.pk, "by": user.get_username()})
        landing.record_merge_outcome(ticket, tasks, attempt.join, attempt)
    landing.after_merge(ticket.pk, attempt)
    return attempt


def retry_with_hint(attempt_id: int, hint: str, user) -> MergeAttempt:
    attempt, ticket, tasks, git = _context(attempt_id)
    attempt = review.retry_with_hint(git, attempt_id, hint, user, merge_plan(ticket, tasks))
    charge_llm(ticket.pk)
    Event.record(ticket, "review.retried", {"attempt_id": attempt.pk, "by": user.get_username(), "hint": hint,
                                            "review_reason": attempt.review_reason})
    return attempt


def drop_source(attempt_id: int, source: str, user) -> MergeAttempt:
    """Merge the join without ``source``; that task runs again afterwards, on the merged head, with the
    conflict it caused in its context."""
    attempt, ticket, tasks, git = _context(attempt_id)
    with leases.ticket_merge_lease(ticket.pk):
        ticket.refresh_from_db()
        plan = merge_plan(ticket, tasks)
        plan.current_head = ticket.head_sha
        attempt = review.drop_source(git, attempt_id, source, user, plan)
        dropped = Task.objects.get(ticket=ticket, key=source)
        landing.requeue_dropped_source(dropped, attempt, user)
        landing.record_merge_outcome(ticket, [t for t in tasks if t.key != source], attempt.join, attempt)
    landing.after_merge(ticket.pk, attempt)
    return attempt
