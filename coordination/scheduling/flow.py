"""The scheduler: which tasks may start, when work lands on the ticket branch, when a ticket ends.

``advance`` is called after every change (a task finished, a merge landed) and is idempotent: it reads
the whole ticket under a row lock and makes every move that is due. Merging is slow I/O, so it happens
in ``land_task`` / ``converge_join`` outside any transaction, serialized per ticket by a lease.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from coordination.domain import ownership
from coordination.domain.synthesis import synthesize
from coordination.jobs import dispatch
from coordination.jobs.dispatch import Job
from coordination.models import Event, Join, Task, Ticket
from coordination.running import workspace
from coordination.scheduling.plans import merge_plan
from merges.attempts import run_attempt
from merges.engine.git import GitError
from merges.models import MergeAttempt
from merges.recovery import roll_back

log = logging.getLogger(__name__)

UNFINISHED_TASK = ("ready", "claimed", "running")
DEAD_END = ("failed", "blocked", "cancelled")


def advance(ticket_id: int) -> None:
    with transaction.atomic():
        # The lock makes concurrent advances (two tasks finishing at once) take turns.
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        if ticket.machine.is_final(ticket.status):
            return
        if ticket.status == "pending":
            ticket.transition("running")
        tasks = {t.pk: t for t in ticket.tasks.prefetch_related("depends_on")}
        parents = {t.pk: [tasks[p.pk] for p in t.depends_on.all()] for t in tasks.values()}
        joins = list(ticket.joins.prefetch_related("sources"))
        join_of = {j.continuation_id: j for j in joins}

        sources = {j.pk: [tasks[s.pk] for s in j.sources.all()] for j in joins}
        claims = ClaimBook(ticket, tasks.values())
        moved = True
        while moved:  # blocking propagates down the DAG: repeat until nothing moves
            moved = False
            for join in joins:
                if join.status == "waiting":
                    verdict = join_verdict(join.merge_strategy, [s.status for s in sources[join.pk]])
                    if verdict == "ready":
                        join.transition("synthesizing")
                        dispatch.submit(Job.CONVERGE_JOIN, join.pk)
                    elif verdict == "failed":
                        join.transition("failed", event_payload={"strategy": join.merge_strategy})
                        moved = True
            for task in tasks.values():
                if task.status == "pending":
                    moved |= _release_or_block(task, parents[task.pk], join_of.get(task.pk), claims)
        _settle_ticket(ticket, list(tasks.values()), joins)


def _release_or_block(task: Task, parents: list[Task], join: Join | None, claims: ClaimBook) -> bool:
    """A pending task becomes ready once its parents' work is on the ticket branch (for a join: once
    the join merged) and no active task claims its files; blocked once that can no longer happen.
    True when it was blocked."""
    if join is not None:
        if join.status == "failed":
            task.transition("blocked", error="its join failed: too few sources succeeded")
            return True
        if join.status == "merged":
            claims.release_if_free(task)
        return False
    if any(p.status in DEAD_END for p in parents):
        task.transition("blocked", error="an upstream task did not succeed")
        return True
    if all(p.status == "succeeded" and p.landed for p in parents):
        claims.release_if_free(task)
    return False


class ClaimBook:
    """File-ownership claims of a ticket's active tasks: a task whose patterns overlap one waits."""

    ACTIVE = ("ready", "claimed", "running")

    def __init__(self, ticket: Ticket, tasks):
        self.ticket = ticket
        self.held = {t.key: list(t.owned_files) for t in tasks if t.status in self.ACTIVE and t.owned_files}

    def release_if_free(self, task: Task) -> None:
        blocking = ownership.overlapping_claims(task.owned_files, self.held, self._files()) if (
            task.owned_files and self.held) else []
        if blocking:
            first = blocking[0]
            reason = f"{first.holder} (both claim {first.example})"
            if task.waiting_on != reason:
                task.waiting_on = reason
                task.save(update_fields=["waiting_on", "updated_at"])
                Event.record(self.ticket, "task.waiting", {**task.event_refs(), "on": first.holder,
                                                           "example": first.example})
            return
        task.transition("ready", waiting_on="")
        dispatch.submit(Job.RUN_TASK, task.pk)
        if task.owned_files:
            self.held[task.key] = list(task.owned_files)

    def _files(self) -> tuple[str, ...]:
        return repository_files(self.ticket.repository_id, self.ticket.head_sha)


@functools.lru_cache(maxsize=64)
def repository_files(repository_id: int, sha: str) -> tuple[str, ...]:
    """The files at a commit of the workspace clone (commits never change, so this caches safely)."""
    out = workspace.clone_git(repository_id).run("ls-tree", "-r", "-z", "--name-only", sha).stdout
    return tuple(p.decode(errors="surrogateescape") for p in out.split(b"\0") if p)


def join_verdict(strategy: str, source_statuses: list[str]) -> str:
    """"ready", "failed" or "waiting" for a join's sources under its strategy:
    ``all`` needs every source; ``success_only`` merges whichever succeeded once all have finished;
    ``quorum:N`` needs at least N successes among the finished sources."""
    succeeded = source_statuses.count("succeeded")
    dead = sum(status in DEAD_END for status in source_statuses)
    finished = succeeded + dead == len(source_statuses)
    needed = {"all": len(source_statuses), "success_only": 1}.get(strategy)
    if needed is None:
        needed = int(strategy.removeprefix("quorum:"))
    if len(source_statuses) - dead < needed:
        return "failed"
    return "ready" if finished and succeeded >= needed else "waiting"


def _settle_ticket(ticket: Ticket, tasks: list[Task], joins: list[Join]) -> None:
    # A source a partial join went on without (success_only, quorum) does not keep the ticket from done;
    # anything else that depended on it is blocked, and that does.
    merged_sources = {s.pk for j in joins if j.status == "merged" for s in j.sources.all()}
    tolerated = {t.pk for t in tasks if t.status in ("failed", "cancelled") and t.pk in merged_sources}
    if tasks and all((t.status == "succeeded" and t.landed) or t.pk in tolerated for t in tasks):
        ticket.transition("done", finished_at=timezone.now())
        return
    if any(t.status in UNFINISHED_TASK for t in tasks) or any(j.status in ("synthesizing", "merging")
                                                               for j in joins):
        return
    if any(j.status == "awaiting_review" for j in joins) or ticket.status == "awaiting_review":
        return
    failed = [t for t in tasks if t.status == "failed"]
    if failed:
        names = ", ".join(f"{t.key} ({t.error.splitlines()[0] if t.error else 'failed'})" for t in failed)
        ticket.transition("failed", error=f"task(s) failed: {names}", finished_at=timezone.now())


def task_finished(task_id: int) -> None:
    """A task ended: land its work if no join waits for it, then move the ticket on."""
    task = Task.objects.get(pk=task_id)
    if task.status == "succeeded" and not task.source_of_joins.exists():
        land_task(task_id)
    else:
        advance(task.ticket_id)


def land_task(task_id: int) -> None:
    """Merge a finished task's branch into the ticket branch (a task that is no join's source)."""
    task = Task.objects.select_related("ticket__repository").get(pk=task_id)
    if task.landed or task.status != "succeeded" or task.source_of_joins.exists():
        return
    _merge_into_ticket(task.ticket, [task], join=None)


def converge_join(join_id: int) -> None:
    """Synthesis, then the convergence merge of the join's sources; idempotent on redelivery."""
    with transaction.atomic():
        join = Join.objects.select_for_update().select_related("continuation", "ticket__repository").get(pk=join_id)
        if join.status != "synthesizing":
            return  # already taken by another delivery of this message
        sources = [s for s in join.sources.all() if s.status == "succeeded"]
        continuation = join.continuation
        continuation.synthesis_context = synthesize(sources)
        continuation.save(update_fields=["synthesis_context", "updated_at"])
        join.transition("merging", event_payload={"sources": sorted(s.key for s in sources)})
        ticket = Ticket.objects.select_for_update().get(pk=join.ticket_id)
        if ticket.status == "running":
            ticket.transition("merging")
    _merge_into_ticket(join.ticket, sources, join=join)


def _merge_into_ticket(ticket: Ticket, tasks: Sequence[Task], join: Join | None) -> None:
    git = workspace.clone_git(ticket.repository_id)
    with ticket_merge_lease(ticket.pk):
        ticket.refresh_from_db()
        if ticket.machine.is_final(ticket.status):
            return  # cancelled (or ended) while this merge waited for the lease
        landed = set(Task.objects.filter(pk__in=[t.pk for t in tasks], landed=True).values_list("pk", flat=True))
        pending = [t for t in tasks if t.pk not in landed]
        if not pending and join is None:
            return  # a redelivered landing: the work is already on the ticket branch
        Event.record(ticket, "merge.started", {"sources": [t.key for t in pending],
                                               "join_id": join.pk if join else None})
        attempt = run_attempt(
            git, merge_plan(ticket, pending), ticket_id=ticket.pk, target_ref=ticket.ref,
            expected_head=ticket.head_sha, join_id=join.pk if join else None,
            task_id=pending[0].pk if join is None and pending else None,
        )
        record_merge_outcome(ticket, tasks, join, attempt)
    after_merge(ticket.pk, attempt)


def after_merge(ticket_id: int, attempt: MergeAttempt) -> None:
    charge_llm(ticket_id)
    if attempt.status == "merged":
        publish_ticket(ticket_id)
    advance(ticket_id)


def record_merge_outcome(ticket: Ticket, tasks: Sequence[Task], join: Join | None, attempt: MergeAttempt) -> None:
    """The one way a merge's result reaches the DAG, automatic or reviewed: a merged attempt lands its
    sources and releases the continuation (through ``advance``); a conflict waits for a person."""
    payload = {"attempt_id": attempt.pk, "join_id": join.pk if join else None,
               "order": attempt.merge_order, "scores": attempt.conflict_scores}
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        join = Join.objects.select_for_update().get(pk=join.pk) if join else None
        if ticket.machine.is_final(ticket.status):
            Event.record(ticket, "merge.ignored", {**payload, "why": f"ticket is {ticket.status}"})
            return
        Event.record(ticket, f"merge.{attempt.status}", {**payload, "error": attempt.error,
                                                           "review_reason": attempt.review_reason})
        if attempt.status == "merged":
            ticket.head_sha = attempt.result_sha
            ticket.save(update_fields=["head_sha", "updated_at"])
            Event.record(ticket, "ticket.head", {"sha": attempt.result_sha})
            Task.objects.filter(pk__in=[t.pk for t in tasks]).update(landed=True)
            if join:
                join.transition("merged")
            still_waiting = ticket.joins.filter(status="awaiting_review").exists()
            if ticket.status == "merging" or (ticket.status == "awaiting_review" and not still_waiting):
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


def charge_llm(ticket_id: int) -> None:
    """The ticket's LLM spend, summed from what its merges and agent tasks recorded (idempotent)."""
    spent = MergeAttempt.objects.filter(ticket_id=ticket_id).aggregate(n=Sum("llm_invocations"),
                                                                       usd=Sum("llm_cost_usd"))
    invocations, usd = spent["n"] or 0, spent["usd"] or Decimal(0)
    for result in Task.objects.filter(ticket_id=ticket_id).exclude(result=None).values_list("result", flat=True):
        invocations += result.get("llm_invocations", 0)
        usd += Decimal(str(result.get("cost_usd", 0)))
    Ticket.objects.filter(pk=ticket_id).update(llm_invocations=invocations, llm_cost_usd=usd)


def requeue_dropped_source(task: Task, attempt: MergeAttempt, user) -> None:
    """A reviewer merged a join without ``task``: it runs again on the merged head, as a task of its own,
    with the conflict it caused in its context."""
    with transaction.atomic():
        task = Task.objects.select_for_update().select_related("ticket").get(pk=task.pk)
        for join in task.source_of_joins.all():
            join.sources.remove(task)
        conflicts = [{"path": c.path, "kind": c.kind, "hunks": c.hunks}
                     for c in attempt.conflict_files.filter(source=task.key)]
        task.transition("pending", landed=False, synthesis_context={
            "dropped_from_merge": attempt.pk, "dropped_by": user.get_username(), "conflicts": conflicts})


def rollback_attempt(attempt_id: int, user=None) -> MergeAttempt:
    """Undo a merged attempt: the ticket branch goes back to its recovery point (CAS), the sources'
    work is no longer counted as landed, and the source repository is told. Raises CannotRollBack."""
    attempt = MergeAttempt.objects.select_related("ticket").get(pk=attempt_id)
    ticket = attempt.ticket
    with ticket_merge_lease(ticket.pk):
        attempt = roll_back(workspace.clone_git(ticket.repository_id), attempt_id, user)
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
            ticket.head_sha = attempt.base_sha
            ticket.save(update_fields=["head_sha", "updated_at"])
            ticket.tasks.filter(key__in=[i["name"] for i in attempt.incoming]).update(landed=False)
            Event.record(ticket, "merge.rolled_back", {"attempt_id": attempt.pk, "sha": attempt.base_sha,
                                                       "by": user.get_username() if user else "cli"})
            Event.record(ticket, "ticket.head", {"sha": attempt.base_sha})
    publish_ticket(ticket.pk)
    return attempt


def publish_ticket(ticket_id: int) -> None:
    """Push ticket/<id> back to the source repository, leased on what was pushed last."""
    ticket = Ticket.objects.select_related("repository").get(pk=ticket_id)
    if ticket.published_sha == ticket.head_sha:
        return
    try:
        workspace.publish(ticket.repository_id, ticket.repository.url_or_path, ticket.ref, ticket.head_sha,
                          ticket.published_sha)
    except GitError as exc:
        Event.record(ticket, "publish.failed", {"error": exc.stderr or str(exc)})
        return
    Ticket.objects.filter(pk=ticket_id).update(published_sha=ticket.head_sha)
    Event.record(ticket, "ticket.published", {"sha": ticket.head_sha})


@contextmanager
def ticket_merge_lease(ticket_id: int, wait_seconds: float = 600) -> Iterator[None]:
    """One merge at a time per ticket, across processes and hosts: a lease row taken by conditional
    UPDATE (expiring, so a dead worker cannot hold it forever)."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_seconds
    lease = timedelta(seconds=settings.DAGMERGE_LEASE_SECONDS * 5)
    while True:
        now = timezone.now()
        free = Ticket.objects.filter(Q(merge_lock_owner="") | Q(merge_lock_expires_at__lt=now), pk=ticket_id)
        if free.update(merge_lock_owner=owner, merge_lock_expires_at=now + lease):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"ticket {ticket_id}: another merge held the ticket for {wait_seconds} s")
        time.sleep(0.05)
    try:
        yield
    finally:
        Ticket.objects.filter(pk=ticket_id, merge_lock_owner=owner).update(merge_lock_owner="",
                                                                           merge_lock_expires_at=None)
