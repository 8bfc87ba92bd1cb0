"""Undoing a merged attempt, as a state of the ticket, and what a rolled-back ticket may do next.

Rolling back attempt X moves ``ticket/<id>`` back to X's recovery point (compare-and-swap, so only the
latest merge can be undone) and, in the same domain operation, says so everywhere: X is
``rolled_back``, its join and its sources are ``rolled_back`` with every task downstream of them that had
succeeded (their work was built on the undone merge), the ticket is ``rolled_back`` (nothing lands or
starts; the sweep leaves it alone), and the resolutions reviewers approved in X are withdrawn from the
``recorded`` resolver. Then a person either resumes the ticket (``resume_ticket``: the rolled-back tasks
run again from the restored head, their joins merge again) or closes it (cancel).

The intent is written on the attempt before the ref moves; a rollback whose process died is finished by
the sweep (``landing.recover_merge``) — the ref move is idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from coordination.domain import dispatch
from coordination.domain.dispatch import Job
from coordination.models import Event, Join, Task, Ticket
from coordination.running import workspace
from coordination.running.leases import ticket_merge_lease
from coordination.scheduling.publishing import publish_ticket
from merges.models import MergeAttempt, RecordedResolution
from merges.recovery import CannotRollBack, mark_rolled_back, roll_back_ref

log = logging.getLogger(__name__)


@dataclass
class RollbackPreview:
    """What rolling back an attempt undoes (reads only: the rows and the ticket ref)."""

    attempt: MergeAttempt
    ticket: Ticket
    undone: list[Task] = field(default_factory=list)  # sources and what succeeded downstream of them
    withdrawn: int = 0  # recorded resolutions the recorded resolver will no longer reuse
    problems: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.problems


def preview_rollback(attempt_id: int) -> RollbackPreview:
    attempt = MergeAttempt.objects.select_related("ticket", "join__continuation").get(pk=attempt_id)
    ticket = attempt.ticket
    preview = RollbackPreview(attempt, ticket)
    if attempt.status != "merged":
        preview.problems.append(f"merge #{attempt.pk} is {attempt.get_status_display()}: only a merged one rolls back")
        return preview
    ref = workspace.clone_git(ticket.repository_id).rev_parse(ticket.ref)
    if ref != attempt.result_sha:
        later = MergeAttempt.objects.filter(ticket=ticket, status="merged", pk__gt=attempt.pk).order_by("-pk")
        preview.problems.append(f"{ticket.branch} moved on since merge #{attempt.pk}; roll back the later merges "
                                f"first ({', '.join(f'#{a.pk}' for a in later) or 'not made by dagmerge'})")
    sources = list(ticket.tasks.filter(key__in=[i["name"] for i in attempt.incoming]))
    preview.undone = sorted((t for t in _with_descendants(ticket, sources) if t.status == "succeeded"),
                            key=lambda t: t.pk)
    preview.withdrawn = RecordedResolution.objects.filter(attempt=attempt).count()
    return preview


def rollback_attempt(attempt_id: int, user=None) -> MergeAttempt:
    """Undo a merged attempt (see the module docstring). Raises CannotRollBack."""
    attempt = MergeAttempt.objects.select_related("ticket").get(pk=attempt_id)
    ticket = attempt.ticket
    with ticket_merge_lease(ticket.pk):
        attempt.refresh_from_db()
        intent = {"kind": "rollback", "user_id": user.pk if user else None}
        if not MergeAttempt.objects.filter(pk=attempt.pk, status="merged").update(pending_action=intent):
            raise CannotRollBack(f"merge #{attempt.pk} is {attempt.status}; only a merged attempt can be rolled back")
        try:
            roll_back_ref(workspace.clone_git(ticket.repository_id), attempt)
        except CannotRollBack:
            MergeAttempt.objects.filter(pk=attempt.pk).update(pending_action={})
            raise
        _record_rollback(attempt, user)
    publish_ticket(ticket.pk)
    attempt.refresh_from_db()
    return attempt


def _record_rollback(attempt: MergeAttempt, user) -> None:
    by = user.get_username() if user else "cli"
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=attempt.ticket_id)
        withdrawn = mark_rolled_back(attempt.pk, user)
        ticket.head_sha = attempt.base_sha
        ticket.save(update_fields=["head_sha", "updated_at"])
        sources = list(ticket.tasks.filter(key__in=[i["name"] for i in attempt.incoming]))
        undone = _with_descendants(ticket, sources)
        for task in undone:
            if task.status == "succeeded":
                task.transition("rolled_back", landed=False, event_payload={"attempt_id": attempt.pk, "by": by})
        Task.objects.filter(pk__in=[t.pk for t in undone]).update(landed=False)
        if attempt.join_id:
            join = Join.objects.select_for_update(no_key=True).get(pk=attempt.join_id)
            if join.status == "merged":
                join.transition("rolled_back", event_payload={"attempt_id": attempt.pk})
        Event.record(ticket, "merge.rolled_back", {"attempt_id": attempt.pk, "sha": attempt.base_sha, "by": by,
                                                   "tasks": sorted(t.key for t in undone),
                                                   "recorded_resolutions_withdrawn": withdrawn})
        Event.record(ticket, "ticket.head", {"sha": attempt.base_sha})
        if ticket.status != "rolled_back" and "rolled_back" in ticket.machine.transitions[ticket.status]:
            ticket.transition("rolled_back", finished_at=None, event_payload={"attempt_id": attempt.pk, "by": by})


def _with_descendants(ticket: Ticket, roots: list[Task]) -> list[Task]:
    children: dict[int, list[Task]] = {}
    tasks = list(ticket.tasks.prefetch_related("depends_on"))
    for task in tasks:
        for parent in task.depends_on.all():
            children.setdefault(parent.pk, []).append(task)
    seen: dict[int, Task] = {}
    queue = list(roots)
    while queue:
        task = queue.pop()
        if task.pk not in seen:
            seen[task.pk] = task
            queue.extend(children.get(task.pk, []))
    return list(seen.values())


def resume_ticket(ticket_id: int, user=None) -> Ticket:
    """A rolled-back ticket goes back to work: its rolled-back tasks run again from the restored head."""
    by = user.get_username() if user else "cli"
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
        if ticket.status != "rolled_back":
            raise CannotRollBack(f"ticket #{ticket.pk} is {ticket.status}, not rolled back")
        for task in ticket.tasks.filter(status="rolled_back"):
            task.transition("pending", error="", event_payload={"by": by, "why": "resumed after a rollback"})
        for join in ticket.joins.filter(status="rolled_back"):
            join.transition("waiting", event_payload={"by": by})
        ticket.transition("running", event_payload={"by": by})
        dispatch.submit(Job.ADVANCE, ticket.pk)
    return ticket
