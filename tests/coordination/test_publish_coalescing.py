"""A merge leaves the push to the ticket's next merge when one is due already; the last one pushes."""

from __future__ import annotations

import pytest

from coordination.domain import dispatch
from coordination.models import Event, Task
from coordination.running import execution, workspace
from coordination.scheduling import landing, scheduler
from merges.engine.git import Git
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _two_finished(tmp_path):
    """Tasks A and B of one ticket both finished before either lands: two merges due."""
    dispatch.use(RecordingDispatcher())
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt")},
                           {"key": "B", "command": sh("echo b > b.txt")}])
    scheduler.advance(ticket.pk)
    first, second = Task.objects.filter(ticket=ticket).order_by("key")
    for task in (first, second):
        execution.run_task(task.pk)
    return Git(repo.path), ticket, first, second


def test_a_merge_with_another_due_leaves_the_push_to_it_and_the_last_one_pushes(tmp_path):
    source, ticket, first, second = _two_finished(tmp_path)

    landing.land_task(first.pk)
    ticket.refresh_from_db()
    assert Task.objects.get(pk=first.pk).landed and ticket.head_sha != ticket.base_sha
    assert ticket.published_sha == ticket.base_sha != ticket.head_sha  # left to B's merge
    assert source.rev_parse(ticket.ref) == ticket.base_sha  # as submitted

    landing.land_task(second.pk)
    ticket.refresh_from_db()
    assert ticket.status == "done" and ticket.published_sha == ticket.head_sha
    assert source.rev_parse(ticket.ref) == ticket.head_sha  # holds both merges
    pushed = Event.objects.filter(ticket=ticket, kind="ticket.published").order_by("pk")
    assert [e.payload["sha"] for e in pushed] == [ticket.base_sha, ticket.head_sha]  # at submit, then once


def test_a_merge_with_none_due_after_it_pushes_at_once(tmp_path):
    dispatch.use(RecordingDispatcher())
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt")}])
    scheduler.advance(ticket.pk)
    task = Task.objects.get(ticket=ticket)
    execution.run_task(task.pk)
    landing.land_task(task.pk)
    ticket.refresh_from_db()
    assert ticket.published_sha == ticket.head_sha and Git(repo.path).rev_parse(ticket.ref) == ticket.head_sha


def test_a_push_crossing_another_publish_of_an_older_head_goes_over_it(tmp_path):
    source, ticket, first, second = _two_finished(tmp_path)
    landing.land_task(first.pk)  # its push left to B's merge
    ticket.refresh_from_db()
    older = ticket.head_sha
    # A publish of A's landing pushed (not recorded yet) while B's merge read what was published last.
    workspace.publish(ticket.repository_id, str(source.repo), ticket.ref, older, ticket.base_sha)

    landing.land_task(second.pk)

    ticket.refresh_from_db()
    assert source.rev_parse(ticket.ref) == ticket.head_sha == ticket.published_sha
    assert not Event.objects.filter(ticket=ticket, kind="publish.failed").exists()
    assert ticket.publish_failures == 0


def test_a_commit_someone_else_pushed_to_the_ticket_branch_is_never_pushed_over(tmp_path):
    source, ticket, first, second = _two_finished(tmp_path)
    landing.land_task(first.pk)  # its push left to B's merge
    ticket.refresh_from_db()
    foreign = source.commit_tree(source.tree_of(ticket.base_sha), [ticket.base_sha], "someone else's work")
    source.update_ref(ticket.ref, foreign, ticket.base_sha)

    landing.land_task(second.pk)

    ticket.refresh_from_db()
    assert source.rev_parse(ticket.ref) == foreign
    assert ticket.published_sha == ticket.base_sha and ticket.publish_failures == 1
    assert Event.objects.filter(ticket=ticket, kind="publish.failed").exists()
