"""The scheduler: which tasks may start and when a ticket ends.

``advance`` is called after every change (a task finished, a merge landed) and is idempotent: it reads
the whole ticket under a row lock and makes every move that is due. Merging the work is ``landing``'s.
"""

from __future__ import annotations

import functools
import logging

from django.db import transaction
from django.utils import timezone

from coordination.domain import dispatch, ownership, states
from coordination.domain.dispatch import Job
from coordination.models import Event, Join, Task, Ticket
from coordination.running import workspace

log = logging.getLogger(__name__)

UNFINISHED_TASK = ("ready", "claimed", "running")
DEAD_END = ("failed", "blocked", "cancelled")


def advance(ticket_id: int) -> None:
    # The ticket's files (for claims on files that exist) are read before the lock: no git in a transaction.
    repository_id, head = Ticket.objects.values_list("repository_id", "head_sha").get(pk=ticket_id)
    files = repository_files(repository_id, head)
    with transaction.atomic():
        # The lock makes concurrent advances (two tasks finishing at once) take turns.
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        if ticket.status in states.TICKET_IDLE:
            return  # rolled back: nothing starts until a person resumes the ticket
        if ticket.status == "pending":
            ticket.transition("running")
        tasks = {t.pk: t for t in ticket.tasks.prefetch_related("depends_on")}
        parents = {t.pk: [tasks[p.pk] for p in t.depends_on.all()] for t in tasks.values()}
        joins = list(ticket.joins.prefetch_related("sources"))
        join_of = {j.continuation_id: j for j in joins}

        sources = {j.pk: [tasks[s.pk] for s in j.sources.all()] for j in joins}
        claims = ClaimBook(ticket, tasks.values(), files)
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

    def __init__(self, ticket: Ticket, tasks, files: tuple[str, ...]):
        self.ticket, self.files = ticket, files
        self.held = {t.key: list(t.owned_files) for t in tasks if t.status in self.ACTIVE and t.owned_files}

    def release_if_free(self, task: Task) -> None:
        blocking = ownership.overlapping_claims(task.owned_files, self.held, self.files) if (
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
