from __future__ import annotations

import pytest

from coordination.domain.spec import SpecError
from coordination.models import Event, Join, Repository, Task, Ticket
from coordination.scheduling.joins import ensure_join
from tests.scenarios import source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _row_counts():
    return [m.objects.count() for m in (Repository, Ticket, Task, Join, Event)]


def test_missing_repository_is_refused_and_nothing_is_written(tmp_path):
    from tests.gitrepo import Repo

    before = _row_counts()
    ghost = Repo.__new__(Repo)
    ghost.path = tmp_path / "nowhere"
    with pytest.raises(SpecError, match=r"repository .*nowhere does not exist"):
        submit(ghost, [{"key": "A", "command": "true"}])
    assert _row_counts() == before


def test_a_folder_that_is_not_a_repository_is_refused(tmp_path):
    from tests.gitrepo import Repo

    (tmp_path / "plain").mkdir()
    plain = Repo.__new__(Repo)
    plain.path = tmp_path / "plain"
    with pytest.raises(SpecError, match="is not a git repository"):
        submit(plain, [{"key": "A", "command": "true"}])


def test_missing_base_branch_is_refused_and_nothing_is_written(tmp_path):
    repo = source_repo(tmp_path)
    before = _row_counts()
    with pytest.raises(SpecError, match="base branch 'develop' does not exist"):
        submit(repo, [{"key": "A", "command": "true"}], base_branch="develop")
    with pytest.raises(SpecError, match="'bad..branch' is not a valid branch name"):
        submit(repo, [{"key": "A", "command": "true"}], base_branch="bad..branch")
    assert _row_counts() == before


def test_submit_creates_the_ticket_branch_joins_and_events(tmp_path):
    repo = source_repo(tmp_path)
    ticket = submit(repo, [
        {"key": "A", "command": "true"},
        {"key": "D", "depends_on": ["B", "C"], "command": "true"},  # listed before its parents
        {"key": "B", "depends_on": ["A"], "command": "true"},
        {"key": "C", "depends_on": ["A"], "command": "true"},
    ])
    join = Join.objects.get(ticket=ticket)
    assert join.continuation.key == "D" and sorted(s.key for s in join.sources.all()) == ["B", "C"]
    assert ticket.head_sha == ticket.base_sha == repo.head("main")
    assert Event.objects.filter(ticket=ticket, kind="join.registered").count() == 1


def test_a_join_registers_itself_however_the_task_was_created(tmp_path):
    """Admin, API or a task adding work: adding a second parent to any task makes it a join."""
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": "true"}, {"key": "B", "command": "true"}])
    a, b = ticket.tasks.order_by("key")
    late = Task.objects.create(ticket=ticket, key="Z", title="added later", command="true")
    assert ensure_join(late) is None
    late.depends_on.add(a)
    assert not Join.objects.filter(continuation=late).exists()
    b.dependents.add(late)  # from the parent's side
    join = Join.objects.get(continuation=late)
    assert sorted(s.key for s in join.sources.all()) == ["A", "B"]


def test_the_submitted_spec_is_kept_as_given_off_the_tickets_row_and_shown_in_the_admin(tmp_path, admin_client):
    """Every task's move reads the ticket's row: the spec (150 kB for 1,000 tasks) is a row of its own."""
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": "true", "title": "the first task"}])
    assert ticket.submitted.spec["tasks"] == [{"key": "A", "command": "true", "title": "the first task"}]
    assert "spec" not in {f.name for f in Ticket._meta.concrete_fields}
    page = admin_client.get(f"/admin/coordination/ticket/{ticket.pk}/change/").content.decode()
    assert "submitted spec" in page and "&quot;command&quot;: &quot;true&quot;" in page
