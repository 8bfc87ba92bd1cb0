"""A reviewer's decisions, recorded as events; approve, retry with a hint and drop a source: queued at once,
carried out as a git job.

A decision (``merges.review``) and its ``review.decided`` event commit together, so every other page open on
the review swaps the file it changed (``review.live``).

The request checks and takes the attempt under its row lock (``merges.review.request_action``) and
answers; ``carry_out_review`` runs on the git queue under the ticket's merge lease, builds the plan for the
ticket, lets ``merges.review`` do the git work, then releases the continuation the same way an automatic
merge does (``landing.record_merge_outcome``). A worker that dies mid-way leaves the attempt running with
its action queued: the sweep hands the job out again, and it starts over from the decided round.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import transaction

from coordination.domain import dispatch
from coordination.domain.budget import llm_settings, ticket_budget
from coordination.domain.dispatch import Job
from coordination.models import Event, Task
from coordination.running import workspace
from coordination.running.leases import ticket_merge_lease
from coordination.running.llm_budget import reserved_on_use
from coordination.scheduling import landing
from coordination.scheduling.plans import merge_plan
from coordination.scheduling.spending import charge_llm
from merges import review
from merges.engine.llm import BUDGET_EXHAUSTED, agent_unavailable
from merges.models import ConflictFile, MergeAttempt


def decide_hunk(conflict_file_id: int, hunk_index: int, choice: str, user, *, text: str | None = None,
                seen: str | None = None) -> ConflictFile:
    return _decided(lambda: review.decide_hunk(conflict_file_id, hunk_index, choice, user, text=text, seen=seen),
                    user, action="decide", hunk=hunk_index, choice=choice)


def undo_hunk(conflict_file_id: int, hunk_index: int, user, *, seen: str | None = None) -> ConflictFile:
    return _decided(lambda: review.undo_hunk(conflict_file_id, hunk_index, user, seen=seen), user, action="undo",
                    hunk=hunk_index)


def decide_file(conflict_file_id: int, choice: str, user, *, text: str | None = None,
                seen: str | None = None) -> ConflictFile:
    return _decided(lambda: review.decide_file(conflict_file_id, choice, user, text=text, seen=seen), user,
                    action="decide", hunk=None, choice=choice)


def _decided(decide: Callable[[], ConflictFile], user, **detail: object) -> ConflictFile:
    with transaction.atomic():
        conflict = decide()
        attempt = conflict.attempt
        Event.record(attempt.ticket, "review.decided", {"attempt_id": attempt.pk, "file_id": conflict.pk,
                                                        "path": conflict.path, "by": user.get_username(),
                                                        **detail})
    return conflict


def request_approve(attempt_id: int, user) -> MergeAttempt:
    """Raises review.GateClosed with the problems when the server-side gate is closed."""
    return _request(attempt_id, "approve", user)


def request_retry(attempt_id: int, hint: str, user) -> MergeAttempt:
    """Raises review.ReviewError when the agent cannot run (no key, no budget): asking would only wait
    for a worker to find out."""
    attempt = MergeAttempt.objects.select_related("ticket").get(pk=attempt_id)
    if attempt.status == "conflicted" and (reason := retry_blocked(attempt)):
        raise review.ReviewError(f"retry with a hint is not available: {reason}")
    return _request(attempt_id, "retry", user, hint=hint)


def retry_blocked(attempt: MergeAttempt) -> str:
    """Why "retry with a hint" cannot run on this attempt now; "" when it can."""
    if not attempt.conflict_tree:
        return "this round is a failed verify command, not a conflict the agent could retry"
    if reason := agent_unavailable(llm_settings()):
        return reason
    return "" if ticket_budget(attempt.ticket).allows() else BUDGET_EXHAUSTED


def request_drop(attempt_id: int, source: str, user) -> MergeAttempt:
    """Merge the join without ``source``; that task runs again afterwards, on the merged head, with the
    conflict it caused in its context."""
    return _request(attempt_id, "drop", user, source=source)


def _request(attempt_id: int, kind: str, user, **detail: str) -> MergeAttempt:
    attempt = review.request_action(attempt_id, kind, user, **detail)
    Event.record(attempt.ticket, "review.requested", {"attempt_id": attempt.pk, "action": kind,
                                                      "by": user.get_username(), **detail})
    dispatch.submit(Job.REVIEW_ACTION, attempt.pk)
    return attempt


def carry_out_review(attempt_id: int) -> None:
    """The job: do the queued action; idempotent (nothing queued: nothing to do)."""
    attempt = MergeAttempt.objects.select_related("ticket", "join").get(pk=attempt_id)
    ticket = attempt.ticket
    with ticket_merge_lease(ticket.pk) as beat:
        attempt.refresh_from_db()
        action = attempt.pending_action
        if attempt.status != "running" or not action:
            return
        ticket.refresh_from_db()
        tasks = list(Task.objects.filter(ticket=ticket, key__in=[i["name"] for i in attempt.incoming]))
        plan = merge_plan(ticket, tasks)
        plan.current_head = ticket.head_sha
        plan.still_leased = lambda: not beat.lost.is_set()
        spent_before = (attempt.llm_invocations, attempt.llm_cost_usd)
        with reserved_on_use(ticket.pk) as reservation:
            plan.policy.budget = reservation.budget
            attempt = review.carry_out(workspace.clone_git(ticket.repository_id), attempt_id, plan)
            reservation.spend(attempt.llm_invocations - spent_before[0],
                              float(attempt.llm_cost_usd - spent_before[1]))
        by = get_user_model().objects.filter(pk=action["user_id"]).first()
        who = by.get_username() if by else "?"
        if action["kind"] == "retry":
            Event.record(ticket, "review.retried", {"attempt_id": attempt.pk, "by": who, "hint": action["hint"],
                                                    "review_reason": attempt.review_reason})
        elif attempt.status != "running":  # running: the lease was lost mid-way, the sweep goes on with it
            if action["kind"] == "drop":
                landing.requeue_dropped_source(Task.objects.get(ticket=ticket, key=action["source"]), attempt, by)
                tasks = [t for t in tasks if t.key != action["source"]]
            Event.record(ticket, f"review.{'approved' if action['kind'] == 'approve' else 'dropped'}",
                         {"attempt_id": attempt.pk, "by": who, "source": action["source"]})
            landing.record_merge_outcome(ticket, tasks, attempt.join, attempt)
    if action["kind"] == "retry":
        charge_llm(ticket.pk)
    elif attempt.status != "running":
        landing.after_merge(ticket.pk)
