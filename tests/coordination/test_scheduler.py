"""The scheduler's per-event path (``advance(ticket, changed_task_ids)``) against the full recomputation.

Random DAGs (claims, joins of every strategy) are driven through random runs by the real state moves
(``execution.claim`` / ``finish``, ``landing.record_merge_outcome``): after every event that calls the
scheduler, both computations run on the same database state (a savepoint apart) and must make the same
moves, write the same events and hand out the same jobs.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordination.domain import dispatch
from coordination.models import Event, Join, Repository, Task, Ticket
from coordination.running import execution, workspace
from coordination.scheduling import landing, scheduler
from merges.models import MergeAttempt
from tests import factories
from tests.gitrepo import Repo

pytestmark = pytest.mark.django_db

CLAIMS = [[], ["a.py"], ["src/**"], ["src/x.py"], ["*.md"], ["docs"], ["new/*.py"], ["src"]]
STRATEGIES = ["all", "all", "success_only", "quorum:1", "quorum:2"]


@pytest.fixture
def repository(tmp_path) -> Repository:
    """A real clone in the workspace: claims are compared against its files (``repository_files``)."""
    source = Repo(tmp_path / "source")
    source.commit({"a.py": "a\n", "src/x.py": "x\n", "README.md": "r\n", "docs/guide.md": "g\n"})
    repository = Repository.objects.create(name="source", url_or_path=str(source.path))
    workspace.sync_clone(repository.pk, str(source.path), "main")
    return repository


@st.composite
def dags(draw) -> list[tuple[list[int], list[str], str]]:
    """(parents, owned_files, join strategy) per task; parents come before their children."""
    size = draw(st.integers(2, 9))
    tasks = []
    for i in range(size):
        parents = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        tasks.append((sorted(parents), draw(st.sampled_from(CLAIMS)), draw(st.sampled_from(STRATEGIES))))
    return tasks


def build(repository: Repository, dag) -> Ticket:
    head = workspace.clone_git(repository.pk).rev_parse("refs/remotes/source/main")
    ticket = factories.make_ticket(repository=repository, base_sha=head, head_sha=head)
    tasks = []
    for i, (parents, claims, strategy) in enumerate(dag):
        tasks.append(factories.make_task(ticket, f"T{i}", [tasks[p] for p in parents], owned_files=claims))
        Join.objects.filter(continuation=tasks[-1]).update(merge_strategy=strategy)
    return ticket


def decisions(ticket: Ticket, changed: list[int] | None) -> tuple:
    """Run the scheduler; what it decided: every row it can move, the events, the jobs."""
    recorder = dispatch.current()
    jobs_before, last_event = len(recorder.jobs), Event.objects.order_by("pk").values_list("pk", flat=True).last()
    scheduler.advance(ticket.pk, changed)
    ticket.refresh_from_db()
    return (
        ticket.status, ticket.error,
        sorted(ticket.tasks.values_list("key", "status", "waiting_on", "error")),
        sorted(ticket.joins.values_list("continuation__key", "status")),
        sorted(Counter((e.kind, repr(sorted(e.payload.items())))
                       for e in Event.objects.filter(ticket=ticket, pk__gt=last_event or 0)).items()),
        sorted(Counter(recorder.jobs[jobs_before:]).items()),
    )


def advance_both_ways(ticket: Ticket, changed: list[int]) -> None:
    """The per-event path must decide what the full recomputation decides; the run goes on from it."""
    with transaction.atomic():
        savepoint = transaction.savepoint()
        full = decisions(ticket, None)
        transaction.savepoint_rollback(savepoint)
        incremental = decisions(ticket, changed)
    assert incremental == full


def merge_outcome(ticket: Ticket, tasks: list[Task], join: Join | None, status: str) -> None:
    ticket.refresh_from_db()
    if ticket.status == "failed" and status == "conflicted":
        status = "merged"  # a failed ticket cannot go to review (landing does not ask for it yet)
    attempt = MergeAttempt.objects.create(ticket=ticket, join=join, target_ref=ticket.ref, base_sha=ticket.head_sha,
                                          status=status, result_sha=ticket.head_sha if status == "merged" else "")
    landing.record_merge_outcome(ticket, tasks, join, attempt)


def step(ticket: Ticket, choice: int, succeeds: bool) -> bool:
    """One thing a worker or a person does next, as the real code does it; False when nothing is left."""
    tasks = list(ticket.tasks.order_by("pk"))
    sources = set(Join.sources.through.objects.filter(join__ticket=ticket).values_list("task_id", flat=True))
    moves = [("start", t) for t in tasks if t.status == "ready"]
    moves += [("finish", t) for t in tasks if t.status == "running"]
    moves += [("land", t) for t in tasks if t.status == "succeeded" and not t.landed and t.pk not in sources]
    moves += [("converge", j) for j in ticket.joins.filter(status="synthesizing")]
    moves += [("approve", j) for j in ticket.joins.filter(status="awaiting_review")]
    if not moves:
        return False
    move, row = moves[choice % len(moves)]
    if move == "start":
        assert execution.claim(row.pk, "worker") is not None
    elif move == "finish":
        outcome = execution.Outcome("succeeded" if succeeds else "failed", error="" if succeeds else "exit 1")
        assert execution.finish(row.pk, "worker", outcome)
        if not succeeds or row.pk in sources:  # landing.task_finished; a task to land waits for its merge
            advance_both_ways(ticket, [row.pk])
    elif move == "land":
        merge_outcome(ticket, [row], None, "merged" if succeeds else "conflicted")
        advance_both_ways(ticket, [row.pk])
    elif move == "converge":
        with transaction.atomic():  # what landing.converge_join does before it merges
            row.transition("merging")
            ticket.refresh_from_db()
            if ticket.status == "running":
                ticket.transition("merging")
        merged = [s for s in row.sources.all() if s.status == "succeeded"]
        merge_outcome(ticket, merged, row, "merged" if succeeds else "conflicted")
        advance_both_ways(ticket, [s.pk for s in merged])
    else:  # a reviewer approves: the review path recomputes the whole ticket
        merge_outcome(ticket, [s for s in row.sources.all() if s.status == "succeeded"], row, "merged")
        scheduler.advance(ticket.pk)
    return True


@pytest.mark.timeout(900)  # a minute on a quiet machine; CI machines are shared
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dag=dags(), choices=st.lists(st.tuples(st.integers(0, 50), st.sampled_from([True] * 3 + [False])),
                                    min_size=40, max_size=80))
def test_the_per_event_path_decides_what_the_full_recomputation_decides(repository, dag, choices):
    ticket = build(repository, dag)
    scheduler.advance(ticket.pk)  # as submit does
    for choice, succeeds in choices:
        if not step(ticket, choice, succeeds):
            break
    ticket.refresh_from_db()
    assert ticket.status in ("running", "done", "failed", "awaiting_review")


def _layered(size: int) -> dict[str, list[str]]:
    """Layers of ten; each task after the first layer depends on one task of the layer before."""
    return {f"t{i}": [f"t{i - 10}"] if i >= 10 else [] for i in range(size)}


def test_a_ticket_fails_only_once_the_work_on_its_way_has_landed(repository):
    """B failed while A's work was on its way to the ticket branch: the ticket fails after A landed."""
    ticket = build(repository, [([], [], "all"), ([], [], "all")])
    a, b = ticket.tasks.order_by("pk")
    Task.objects.filter(pk=a.pk).update(status="succeeded")
    Task.objects.filter(pk=b.pk).update(status="failed", error="exit 1")
    scheduler.advance(ticket.pk, [b.pk])
    ticket.refresh_from_db()
    assert ticket.status == "running"

    merge_outcome(ticket, [a], None, "merged")
    scheduler.advance(ticket.pk, [a.pk])

    ticket.refresh_from_db()
    assert ticket.status == "failed" and ticket.error == "task(s) failed: T1 (exit 1)"
    assert Task.objects.get(pk=a.pk).landed


def test_a_ticket_a_merge_failed_stays_failed(repository):
    """A's merge failed (the ticket with it) after B had failed: the scheduler does not fail it again."""
    ticket = build(repository, [([], [], "all"), ([], [], "all")])
    a, b = ticket.tasks.order_by("pk")
    Task.objects.filter(pk=a.pk).update(status="succeeded")
    Task.objects.filter(pk=b.pk).update(status="failed", error="exit 1")
    ticket.transition("running")

    merge_outcome(ticket, [a], None, "failed")
    scheduler.advance(ticket.pk, [a.pk])

    ticket.refresh_from_db()
    assert ticket.status == "failed" and ticket.error.startswith("merge #")
    assert Event.objects.filter(ticket=ticket, kind="ticket.failed").count() == 1


def _queries_to_release_a_child(repository: Repository, size: int) -> int:
    """Layers of ten tasks, each depending on one task of the layer before; the first layer runs and one
    of its tasks has just landed: the scheduler releases that task's child."""
    head = workspace.clone_git(repository.pk).rev_parse("refs/remotes/source/main")
    ticket = factories.make_ticket(repository=repository, base_sha=head, head_sha=head, status="running")
    tasks = factories.make_dag(ticket, {f"t{i}": [f"t{i - 10}"] if i >= 10 else [] for i in range(size)},
                               owned_files=["src/**"])
    Task.objects.filter(pk__in=[tasks[f"t{i}"].pk for i in range(1, 10)]).update(status="running", owned_files=[])
    Task.objects.filter(pk=tasks["t0"].pk).update(status="succeeded", landed=True)
    dispatch.current().jobs.clear()

    with CaptureQueriesContext(connection) as queries:
        scheduler.advance(ticket.pk, [tasks["t0"].pk])

    assert Task.objects.get(pk=tasks["t10"].pk).status == "ready"
    assert dispatch.current().jobs == [("run_task", tasks["t10"].pk)]
    return len(queries)


def test_an_event_costs_the_same_number_of_queries_whatever_the_ticket_size(repository):
    small, large = _queries_to_release_a_child(repository, 20), _queries_to_release_a_child(repository, 500)
    assert small == large <= 15  # lock, claims, joins, candidates, parents, their joins, the move, settle
