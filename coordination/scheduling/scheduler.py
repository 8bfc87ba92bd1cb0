"""The scheduler: which tasks may start and when a ticket ends.

``advance`` runs after every change and is idempotent; merging the work is ``landing``'s. After an event
(a task finished, a merge landed tasks) it is told which tasks moved and reads only what they can have
changed, so an event costs the same in a ticket of ten tasks or of thousands. Without that list it
recomputes the whole ticket: at submit, after a person's operation, and as the periodic sweep's safety net.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Generic, NamedTuple, TypeVar

from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Prefetch, Q
from django.utils import timezone

from coordination.domain import dispatch, ownership, states
from coordination.domain.dispatch import Job
from coordination.models import Event, Join, Task, Ticket
from coordination.running import workspace

log = logging.getLogger(__name__)

UNFINISHED_TASK = ("ready", "claimed", "running")
DEAD_END = ("failed", "blocked", "cancelled")
T = TypeVar("T")
# Called inside ``advance``'s transaction with a task it just made ready; what it returns (None: nothing)
# took the task, and no job is handed out for it. The relay claims its next task so: no other worker is
# sent after it, and it is never ready and unowned (``relay``).
Take = Callable[[Task], T | None]


class Parent(NamedTuple):
    """What a pending task needs to know of a parent (a Task fits too)."""

    status: str
    landed: bool


def advance(ticket_id: int, changed_task_ids: Collection[int] | None = None,
            take: Take[T] | None = None) -> T | None:
    """Make every move that is due on the ticket: release, block, start joins, end the ticket. Each task
    made ready is handed out as a job, but the one ``take`` took (inside the transaction): returned.

    ``changed_task_ids``: the tasks an event moved (finished, or landed by a merge). Only their pending
    children and themselves, the waiting joins they feed, and the tasks waiting on a claim (a finished
    task released its claims) are read, in a number of queries that does not grow with the ticket.
    None: the whole ticket is read and recomputed.
    """
    files: tuple[str, ...] | None = None  # read only when a task starts waiting on a claim (see ClaimBook)
    while True:
        try:
            return _advance_holding_the_ticket(ticket_id, changed_task_ids, files, take)
        except FileListNeeded:  # rolled back; the file list is git, read outside the transaction
            repository_id, head = Ticket.objects.values_list("repository_id", "head_sha").get(pk=ticket_id)
            files = repository_files(repository_id, head)


def _advance_holding_the_ticket(ticket_id: int, changed_task_ids: Collection[int] | None,
                                files: tuple[str, ...] | None, take: Take[T] | None) -> T | None:
    with transaction.atomic():
        # The lock makes concurrent advances (two tasks finishing at once) take turns; each starts after
        # the change it was called for committed, so the last one sees every change.
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
        if ticket.status in states.TICKET_IDLE:
            return None  # rolled back: nothing starts until a person resumes the ticket
        files = files or FILE_LISTS.known(ticket.repository_id, ticket.head_sha)  # memory: no git here
        if ticket.status == "pending":
            ticket.transition("running")
        claims = ClaimBook(ticket, files, take)
        if changed_task_ids is None:
            _recompute(ticket, claims)
        else:
            _propagate(ticket, set(changed_task_ids), claims)
        if not claims.released:  # a task just made ready: the ticket is on its way, nothing to settle
            _settle_ticket(ticket)
        return claims.taken


def _recompute(ticket: Ticket, claims: ClaimBook[T]) -> None:
    """The whole ticket in memory: every waiting join and every pending task, until nothing moves."""
    tasks = {t.pk: t for t in ticket.tasks.prefetch_related("depends_on")}
    parents = {t.pk: [tasks[p.pk] for p in t.depends_on.all()] for t in tasks.values()}
    joins = list(ticket.joins.prefetch_related("sources"))
    join_of = {j.continuation_id: j for j in joins}
    sources = {j.pk: [tasks[s.pk] for s in j.sources.all()] for j in joins}
    source_ids = {s.pk for j in joins for s in j.sources.all()}
    claims.hold((t.key, t.owned_files) for t in tasks.values() if ClaimBook.holds(t, source_ids))
    moved = True
    while moved:  # blocking propagates down the DAG: repeat until nothing moves
        moved = bool(_decide_joins(joins, sources))
        for task in tasks.values():
            if task.status == "pending":
                moved |= _release_or_block(task, parents[task.pk], join_of.get(task.pk), claims)


def _propagate(ticket: Ticket, changed: set[int], claims: ClaimBook[T]) -> None:
    """What the changed tasks can have moved, wave by wave down the DAG: each wave reads the joins they
    feed and the pending tasks next to them; tasks blocked in a wave are the next wave's changes.

    Only the first wave can release anything (later waves follow blocked tasks and failed joins, which
    block); it also looks at the tasks waiting on a claim of a changed task (a waiting task names the
    task it waits on, and keeps naming it while that one is active). Candidates go in id order, as in
    ``_recompute``, so two tasks claiming the same file are decided the same way by both.
    """
    # The claims held, and the changed tasks' keys, in one read.
    rows = list(ticket.tasks.filter(ClaimBook.holding() | Q(pk__in=changed)).order_by("pk")
                .annotate(holds=ExpressionWrapper(ClaimBook.holding(), BooleanField()))
                .values_list("pk", "key", "owned_files", "holds"))
    claims.hold((key, files) for _, key, files, holds in rows if holds)
    # Waiting on a claim of a changed task (keys are letters, digits and ". _ -": the prefix is exact).
    waiters = Q(pk__in=[])
    for key in (key for pk, key, _, _ in rows if pk in changed):
        waiters |= Q(waiting_on__startswith=f"{key} (")
    frontier = changed
    while frontier:
        waiting = ticket.joins.filter(Q(sources__in=frontier) | Q(continuation__in=frontier), status="waiting")
        joins = list(waiting.distinct().prefetch_related(Prefetch("sources", Task.objects.only("pk", "status"))))
        _decide_joins(joins, {j.pk: list(j.sources.all()) for j in joins})
        # A failed join's continuation is a child of its sources: no need to name it.
        near = Q(pk__in=frontier) | Q(depends_on__in=frontier) | waiters
        waiters = Q(pk__in=[])
        candidates = list(ticket.tasks.filter(near, status="pending").distinct().select_related("join").order_by("pk"))
        parents = _parents_of(candidates)
        frontier = {t.pk for t in candidates
                    if _release_or_block(t, parents[t.pk], getattr(t, "join", None), claims)}  # None: no join


def _parents_of(tasks: Sequence[Task]) -> dict[int, list[Parent]]:
    parents: dict[int, list[Parent]] = {t.pk: [] for t in tasks}
    edges = Task.depends_on.through.objects.filter(from_task_id__in=parents)
    for child, status, landed in edges.values_list("from_task_id", "to_task__status", "to_task__landed"):
        parents[child].append(Parent(status, landed))
    return parents


def _decide_joins(joins: Iterable[Join], sources: dict[int, list[Task]]) -> list[Join]:
    """Start the waiting joins whose sources are done (under their strategy); fail those that can no
    longer gather enough. Returns the joins failed."""
    failed = []
    for join in joins:
        if join.status != "waiting":
            continue
        verdict = join_verdict(join.merge_strategy, [s.status for s in sources[join.pk]])
        if verdict == "ready":
            join.transition("synthesizing")
            dispatch.submit(Job.CONVERGE_JOIN, join.pk)
        elif verdict == "failed":
            join.transition("failed", event_payload={"strategy": join.merge_strategy})
            failed.append(join)
    return failed


def _release_or_block(task: Task, parents: Sequence[Task | Parent], join: Join | None, claims: ClaimBook[T]) -> bool:
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


class FileListNeeded(Exception):
    """A task starts waiting on a claim, and the reason names an example path: an existing file if any."""


class ClaimBook(Generic[T]):
    """File-ownership claims of a ticket's active tasks: a task whose patterns overlap one waits.

    A task holds its claims from ready until its work is on the ticket branch; a join's source lets go
    when it finishes, so that a source waiting on another can still run and the join can merge.
    Whether two claims overlap does not depend on the files; only the example a waiting task names
    does. So the ticket's file list (a git process, which a transaction may not hold) is read only when
    a task starts waiting: ``files`` None raises ``FileListNeeded`` there, and ``advance`` starts again
    with it. Most events (a chain; tasks claiming folders of their own) never read it.
    """

    ACTIVE = ("ready", "claimed", "running")

    def __init__(self, ticket: Ticket, files: tuple[str, ...] | None, take: Take[T] | None = None):
        self.ticket, self.files, self.take = ticket, files, take
        self.held: dict[str, list[str]] = {}
        self.released: list[int] = []  # tasks made ready, in the order released
        self.taken: T | None = None

    def hold(self, holders: Iterable[tuple[str, list[str]]]) -> None:
        """``holders``: (key, owned_files) of the tasks holding claims, in id order (the first is named)."""
        self.held.update((key, list(patterns)) for key, patterns in holders if patterns)

    @classmethod
    def holds(cls, task: Task, join_source_ids: Collection[int]) -> bool:
        return task.status in cls.ACTIVE or (
            task.status == "succeeded" and not task.landed and task.pk not in join_source_ids)

    @classmethod
    def holding(cls) -> Q:
        """``holds`` as a filter on tasks."""
        return Q(status__in=cls.ACTIVE) | to_land()

    def release_if_free(self, task: Task) -> None:
        blocking = ownership.overlapping_claims(task.owned_files, self.held, self.files or ()) if (
            task.owned_files and self.held) else []
        if blocking:
            if any(task.waiting_on.startswith(f"{b.holder} (") for b in blocking):
                return  # still waits on the task it names: only that one finishing can change anything
            if self.files is None:
                raise FileListNeeded
            first = blocking[0]
            reason = f"{first.holder} (both claim {first.example})"
            if task.waiting_on != reason:
                task.waiting_on = reason
                task.save(update_fields=["waiting_on", "updated_at"])
                Event.record(self.ticket, "task.waiting", {**task.event_refs(), "on": first.holder,
                                                           "example": first.example})
            return
        task.transition("ready", waiting_on="")
        taken = self.take(task) if self.take is not None and self.taken is None else None
        if taken is None:
            dispatch.submit(Job.RUN_TASK, task.pk)
        else:
            self.taken = taken
        self.released.append(task.pk)
        if task.owned_files:
            self.held[task.key] = list(task.owned_files)


class FileLists:
    """The files at commits of the workspace clones, kept for the last ``KEPT`` commits read (a commit never
    changes). ``known`` answers from memory only: ``advance`` asks it inside its transaction."""

    KEPT = 64

    def __init__(self) -> None:
        self._lists: OrderedDict[tuple[int, str], tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # git processes run, for tests

    def known(self, repository_id: int, sha: str) -> tuple[str, ...] | None:
        with self._lock:
            return self._lists.get((repository_id, sha))

    def read(self, repository_id: int, sha: str) -> tuple[str, ...]:
        files = self.known(repository_id, sha)
        if files is None:
            out = workspace.clone_git(repository_id).run("ls-tree", "-r", "-z", "--name-only", sha).stdout
            files = tuple(p.decode(errors="surrogateescape") for p in out.split(b"\0") if p)
            with self._lock:
                self.reads += 1
                self._lists[(repository_id, sha)] = files
                while len(self._lists) > self.KEPT:
                    self._lists.popitem(last=False)
        return files

    def clear(self) -> None:
        with self._lock:
            self._lists.clear()
            self.reads = 0


FILE_LISTS = FileLists()


def repository_files(repository_id: int, sha: str) -> tuple[str, ...]:
    """The files at a commit of the workspace clone (a git process the first time)."""
    return FILE_LISTS.read(repository_id, sha)


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


def to_land() -> Q:
    """Tasks that succeeded and whose merge is due or under way (a join's sources land with the join)."""
    return Q(status="succeeded", landed=False) & ~Q(join_source())


def join_source() -> Exists:
    """A task some join gathers: it lands with the join, not on its own."""
    return Exists(Join.sources.through.objects.filter(task_id=OuterRef("pk")))


def _settle_ticket(ticket: Ticket) -> None:
    """Done, failed, or on its way, asked of the database in a few queries (usually one: is anything
    running?) rather than by reading every task."""
    tasks = ticket.tasks.all()
    if tasks.filter(Q(status__in=UNFINISHED_TASK) | to_land()).exists():
        return  # running, or a finished task's work is on its way to the ticket branch
    # A source a partial join went on without (success_only, quorum) does not keep the ticket from done;
    # anything else that depended on it is blocked, and that does.
    merged_source = Join.sources.through.objects.filter(task_id=OuterRef("pk"), join__status="merged")
    tolerated = Q(status__in=("failed", "cancelled")) & Exists(merged_source)
    if tasks.exists() and not tasks.exclude(status="succeeded", landed=True).exclude(tolerated).exists():
        ticket.transition("done", finished_at=timezone.now())
        return
    open_joins = set(ticket.joins.filter(status__in=("synthesizing", "merging", "awaiting_review"))
                     .values_list("status", flat=True))
    if open_joins or ticket.status in ("awaiting_review", "failed"):
        return  # failed already: a merge that was under way when it failed has landed since
    failed = list(tasks.filter(status="failed").order_by("pk").only("key", "error"))
    if failed:
        names = ", ".join(f"{t.key} ({t.error.splitlines()[0] if t.error else 'failed'})" for t in failed)
        ticket.transition("failed", error=f"task(s) failed: {names}", finished_at=timezone.now())
