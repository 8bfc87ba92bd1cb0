"""Landing work on the ticket branch: a finished task's branch, or a join's sources after synthesis.

Merging is slow I/O, so it happens outside any transaction, serialized per ticket by the merge lease;
``record_merge_outcome`` is the one way a merge's result (automatic or reviewed) reaches the DAG.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, TypedDict

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists
from django.utils import timezone

from coordination.domain import dispatch, states
from coordination.domain.dispatch import Job
from coordination.domain.synthesis import synthesize
from coordination.models import Event, Join, Task, Ticket
from coordination.running import workspace
from coordination.running.execution import Claimed
from coordination.running.leases import ticket_merge_lease
from coordination.running.llm_budget import reserved_on_use
from coordination.scheduling.plans import merge_plan
from coordination.scheduling.publishing import publish_ticket
from coordination.scheduling.rollback import rollback_attempt
from coordination.scheduling.scheduler import Take, advance, join_source, to_land
from coordination.scheduling.spending import charge_llm
from merges.attempts import run_attempt
from merges.models import MergeAttempt
from merges.recovery import CannotRollBack

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class Joined(TypedDict):
    joined: bool  # a join's source (``join_source``)


log = logging.getLogger(__name__)

WORKING = ("pending", "running", "merging", "awaiting_review")  # a ticket that lands work


class Landed(NamedTuple):
    """How far a landing went, for the relay that asked it to ``take`` a task it released."""

    handed_out: bool  # what it released is handed out or taken; False: not known here (see ``task_finished``)
    claimed: Claimed | None = None  # what ``take`` took


def task_finished(task_id: int, take: Take[Claimed] | None = None) -> Landed:
    """A task ended: land its work if no join waits for it, then move the ticket on. Not ``handed_out``: it
    is a join's source (the join, if it is due now, is handed out to converge), or another delivery landed it."""
    task = _task_to_land(task_id)
    if (task.result or {}).get("llm_invocations"):
        charge_llm(task.ticket_id)
    if _lands_alone(task):
        return _merge_into_ticket(task.ticket, [task], join=None, take=take)
    advance(task.ticket_id, changed_task_ids=[task.pk])
    return Landed(False)


def land_task(task_id: int) -> None:
    """Merge a finished task's branch into the ticket branch (a task that is no join's source)."""
    task = _task_to_land(task_id)
    if _lands_alone(task):
        _merge_into_ticket(task.ticket, [task], join=None)


def _task_to_land(task_id: int) -> WithAnnotations[Task, Joined]:
    return Task.objects.select_related("ticket__repository").annotate(joined=join_source()).get(pk=task_id)


def _lands_alone(task: WithAnnotations[Task, Joined]) -> bool:
    """Succeeded, not landed yet, and no join's source (a join lands its sources together)."""
    return task.status == "succeeded" and not task.landed and not task.joined


def converge_join(join_id: int, take: Take[Claimed] | None = None) -> Landed:
    """Synthesis, then the convergence merge of the join's sources; idempotent on redelivery."""
    with transaction.atomic():
        # The ticket's row before the join's, as everywhere (``record_merge_outcome``): the other order
        # deadlocked with a recovery recording this join's merge.
        ticket = Ticket.objects.select_for_update(no_key=True, of=("self",)).get(joins=join_id)
        join = (Join.objects.select_for_update(no_key=True, of=("self",))
                .select_related("continuation", "ticket__repository").get(pk=join_id))
        if join.status != "synthesizing":
            return Landed(False)  # already taken by another delivery of this message
        sources = [s for s in join.sources.all() if s.status == "succeeded"]
        continuation = join.continuation
        continuation.synthesis_context = synthesize(sources)
        continuation.save(update_fields=["synthesis_context", "updated_at"])
        join.transition("merging", event_payload={"sources": sorted(s.key for s in sources)})
        if ticket.status == "running":
            ticket.transition("merging")
    return _merge_into_ticket(join.ticket, sources, join=join, take=take)


def _merge_into_ticket(ticket: Ticket, tasks: Sequence[Task], join: Join | None,
                       take: Take[Claimed] | None = None) -> Landed:
    git = workspace.clone_git(ticket.repository_id)
    ids = [t.pk for t in tasks]
    with ticket_merge_lease(ticket.pk) as beat:
        # As it is now, and whether any of the tasks landed meanwhile (usually not: then not asked again).
        ticket = (Ticket.objects.annotate(landed_any=Exists(Task.objects.filter(pk__in=ids, landed=True)))
                  .get(pk=ticket.pk))
        if ticket.status not in WORKING:
            return Landed(False)  # cancelled, rolled back or ended while this merge waited for the lease
        ref_now = git.branch_head(ticket.ref)
        completed = complete_unrecorded_merge(ticket, git, ref_now)
        if completed is not None:  # this very merge, most likely: the checks below now find it done
            after_merge(ticket.pk)
        if join is not None and not Join.objects.filter(pk=join.pk, status="merging").exists():
            return Landed(False)  # another delivery merged it, or the sweep handed it out again
        landed = set(Task.objects.filter(pk__in=ids, landed=True).values_list("pk", flat=True)) if (
            ticket.landed_any or completed is not None) else set()
        pending = [t for t in tasks if t.pk not in landed]
        if not pending and join is None:
            return Landed(False)  # a redelivered landing: the work is already on the ticket branch
        Event.record(ticket, "merge.started", {"sources": [t.key for t in pending],
                                               "join_id": join.pk if join else None})
        plan = merge_plan(ticket, pending)
        plan.still_leased = lambda: not beat.lost.is_set()
        with reserved_on_use(ticket.pk) as reservation:
            plan.policy.budget = reservation.budget
            attempt = run_attempt(
                git, plan, ticket_id=ticket.pk, target_ref=ticket.ref,
                expected_head=ticket.head_sha, join_id=join.pk if join else None,
                task_id=pending[0].pk if join is None and pending else None, ref_seen=ref_now,
            )
            reservation.spend(attempt.llm_invocations, float(attempt.llm_cost_usd))
        if attempt.status == "running":
            return Landed(False)  # the lease was lost before the ref moved: the sweep recovers the attempt
        record_merge_outcome(ticket, tasks, join, attempt)
    return Landed(True, after_merge(ticket.pk, changed_task_ids=ids, take=take, spent=bool(attempt.llm_invocations)))


def recover_merge(attempt_id: int) -> None:
    """A merge attempt left ``running`` by a merger that died (its ticket's merge lease lapsed).

    The ref tells what happened: at the attempt's recorded result, the merge landed and is completed as
    merged; otherwise a queued review action runs again, and an automatic merge is abandoned and handed
    out again (its join back to synthesizing, its task landed anew). A rollback that died half-way is
    finished. Idempotent under the merge lease.
    """
    attempt = MergeAttempt.objects.select_related("ticket", "join").get(pk=attempt_id)
    if attempt.status == "merged" and attempt.pending_action.get("kind") == "rollback":
        user = get_user_model().objects.filter(pk=attempt.pending_action.get("user_id")).first()
        with contextlib.suppress(CannotRollBack):  # refused now: the intent is cleared, nothing moved
            rollback_attempt(attempt.pk, user)
        return
    ticket = attempt.ticket
    git = workspace.clone_git(ticket.repository_id)
    with ticket_merge_lease(ticket.pk):
        ticket.refresh_from_db()
        completed = complete_unrecorded_merge(ticket, git) if ticket.status in WORKING else None
        attempt.refresh_from_db()
        if completed is None and attempt.status == "running":
            if attempt.pending_action:
                dispatch.submit(Job.REVIEW_ACTION, attempt.pk)
            else:
                _abandon(attempt)
    if completed is not None:
        after_merge(ticket.pk)


def complete_unrecorded_merge(ticket: Ticket, git, actual: str | None = None) -> MergeAttempt | None:
    """Record the merge a dead merger made but never recorded; the caller holds the ticket's merge lease.

    A merger writes its result before the compare-and-swap and records the outcome after it; one killed
    in between leaves the ticket ref at that result while the ticket still names the old head (its attempt
    ``running``, or already ``merged`` in a step of its own). Merging again from the old head would fail
    on the moved ref and fail the ticket, so the merge is completed instead. None when the ref is where
    the ticket says (or was moved by someone else: the next merge then refuses, loudly, as before).
    ``actual``: the ref, if the caller has just read it.
    """
    actual = actual or git.rev_parse(ticket.ref)
    if actual == ticket.head_sha:
        return None
    attempt = (MergeAttempt.objects.select_related("join").filter(ticket=ticket, result_sha=actual,
                                                                  status__in=("running", "merged"))
               .order_by("-pk").first())
    if attempt is None:
        return None
    MergeAttempt.objects.filter(pk=attempt.pk, status="running").update(
        status="merged", pending_sources=[], pending_action={}, finished_at=timezone.now())
    attempt.refresh_from_db()
    Event.record(ticket, "merge.recovered", {"attempt_id": attempt.pk, "outcome": "merged"})
    tasks = list(Task.objects.filter(ticket=ticket, key__in=[i["name"] for i in attempt.incoming]))
    record_merge_outcome(ticket, tasks, attempt.join, attempt)
    ticket.refresh_from_db()
    return attempt


def _abandon(attempt: MergeAttempt) -> None:
    """The attempt never moved the ref: it ends as failed, and its work is handed out again."""
    with transaction.atomic():
        if not MergeAttempt.objects.filter(pk=attempt.pk, status="running").update(
                status="failed", error="abandoned: its merger was lost before the ref moved; merged again",
                finished_at=timezone.now()):
            return
        Event.record(attempt.ticket, "merge.recovered", {"attempt_id": attempt.pk, "outcome": "merged again"})
        if attempt.join_id:
            join = Join.objects.select_for_update(no_key=True).get(pk=attempt.join_id)
            if join.status == "merging":
                join.transition("synthesizing", event_payload={"why": "its merger was lost"})
                dispatch.submit(Job.CONVERGE_JOIN, join.pk)
        elif attempt.task_id:
            dispatch.submit(Job.LAND_TASK, attempt.task_id)


def after_merge(ticket_id: int, changed_task_ids: Sequence[int] | None = None,
                take: Take[Claimed] | None = None, spent: bool = True) -> Claimed | None:
    """``changed_task_ids``: the tasks the merge landed, all the scheduler needs to look at; None (a
    reviewer's decision, which may also have re-queued a dropped source, or a recovery) recomputes the
    whole ticket. The next tasks are released first (the relay claims one there, ``take``; returned):
    the push and the spend totals (a reservation already counted what the merge spent, ``llm_budget``;
    ``spent`` False: it spent nothing, the totals stand) are not on their way, and a relay going on to its
    next task hands the push over. The push is left to the ticket's next merge when one is due already (it
    pushes a head holding this one; the sweep, should it never come): one push per merge was a tenth of a
    wide ticket's time."""
    claimed = advance(ticket_id, changed_task_ids, take)
    if not merge_due(ticket_id):
        if claimed is not None:
            dispatch.submit(Job.PUBLISH, ticket_id)
        else:
            publish_ticket(ticket_id)  # nothing to do when the source shows the head already
    if spent:  # after the push's git work: at once, its write waited for the next task's claim (SQLite)
        charge_llm(ticket_id)
    return claimed


def merge_due(ticket_id: int) -> bool:
    """Another merge of the ticket is queued or under way: a join's, or a finished task's on its own."""
    return (Join.objects.filter(ticket_id=ticket_id, status__in=("synthesizing", "merging")).exists()
            or Task.objects.filter(to_land(), ticket_id=ticket_id).exists())


def record_merge_outcome(ticket: Ticket, tasks: Sequence[Task], join: Join | None, attempt: MergeAttempt) -> None:
    """The one way a merge's result reaches the DAG, automatic or reviewed: a merged attempt lands its
    sources and releases the continuation (through ``advance``); a conflict waits for a person."""
    payload = {"attempt_id": attempt.pk, "join_id": join.pk if join else None,
               "order": attempt.merge_order, "scores": attempt.conflict_scores}
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket.pk)
        join = Join.objects.select_for_update(no_key=True).get(pk=join.pk) if join else None
        if ticket.status in states.TICKET_IDLE:
            Event.record(ticket, "merge.ignored", {**payload, "why": f"ticket is {ticket.status}"})
            return
        events = [(f"merge.{attempt.status}", {**payload, "error": attempt.error,
                                                 "review_reason": attempt.review_reason})]
        if attempt.status == "merged":
            ticket.head_sha = attempt.result_sha
            ticket.save(update_fields=["head_sha", "updated_at"])
            events.append(("ticket.head", {"sha": attempt.result_sha}))
        Event.record_all(ticket, events)
        if attempt.status == "merged":
            Task.objects.filter(pk__in=[t.pk for t in tasks]).update(landed=True)
            if join:
                join.transition("merged")
            if ticket.status == "merging" or (ticket.status == "awaiting_review"
                                              and not ticket.joins.filter(status="awaiting_review").exists()):
                ticket.transition("running")
        elif attempt.status == "conflicted":
            if join and join.status != "awaiting_review":
                join.transition("awaiting_review")
            if ticket.status != "awaiting_review":
                ticket.transition("awaiting_review", event_payload={"attempt_id": attempt.pk})
        else:
            if join:
                join.transition("failed")
            ticket.transition("failed", error=f"merge #{attempt.pk} failed: {attempt.error}",
                              finished_at=timezone.now())


def requeue_dropped_source(task: Task, attempt: MergeAttempt, user) -> None:
    """A reviewer merged a join without ``task``: it runs again on the merged head, as a task of its own,
    with the conflict it caused in its context."""
    with transaction.atomic():
        task = Task.objects.select_for_update(no_key=True).select_related("ticket").get(pk=task.pk)
        for join in task.source_of_joins.all():
            join.sources.remove(task)
        conflicts = [{"path": c.path, "kind": c.kind, "hunks": c.hunks}
                     for c in attempt.conflict_files.filter(source=task.key)]
        task.transition("pending", landed=False, synthesis_context={
            "dropped_from_merge": attempt.pk, "dropped_by": user.get_username(), "conflicts": conflicts})
