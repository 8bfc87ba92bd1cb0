from __future__ import annotations

import pytest

from coordination.running import workspace
from coordination.scheduling.rollback import rollback_attempt
from merges.models import MergeAttempt
from merges.recovery import CannotRollBack
from tests.scenarios import run_ticket, sh, source_repo

pytestmark = pytest.mark.django_db(transaction=True)


def test_rollback_restores_the_recovery_point_by_cas_and_marks_the_attempt(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh("echo a > a.txt")},
                               {"key": "B", "depends_on": ["A"], "command": sh("echo b > b.txt")}])
    first, last = MergeAttempt.objects.filter(ticket=ticket).order_by("pk")
    clone = workspace.clone_git(ticket.repository_id)
    assert clone.rev_parse(first.recovery_ref) == ticket.base_sha

    with pytest.raises(CannotRollBack, match="moved on since"):
        rollback_attempt(first.pk)  # B's merge came after it

    rollback_attempt(last.pk)

    last.refresh_from_db()
    ticket.refresh_from_db()
    assert last.status == "rolled_back" and last.rolled_back_at
    assert clone.rev_parse(ticket.ref) == last.base_sha == ticket.head_sha
    assert repo.head(f"refs/heads/{ticket.branch}") == last.base_sha  # published back
    assert not ticket.tasks.get(key="B").landed and ticket.tasks.get(key="A").landed
    with pytest.raises(CannotRollBack, match="only a merged attempt"):
        rollback_attempt(last.pk)


def test_a_reviewer_rolls_back_from_the_admin_and_a_viewer_cannot(tmp_path, client):
    from tests import factories

    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh("echo a > a.txt")}])
    attempt = MergeAttempt.objects.get(ticket=ticket)
    form = {"action": "roll_back", "_selected_action": [attempt.pk]}

    client.force_login(factories.bob())
    client.post("/admin/merges/mergeattempt/", form)
    attempt.refresh_from_db()
    assert attempt.status == "merged"

    client.force_login(factories.alice())
    client.post("/admin/merges/mergeattempt/", form, follow=True)
    attempt.refresh_from_db()
    assert attempt.status == "rolled_back" and attempt.rolled_back_by.username == "alice"
    assert workspace.clone_git(ticket.repository_id).rev_parse(ticket.ref) == ticket.base_sha


def test_a_merge_whose_ref_moved_underneath_keeps_no_recovery_point(tmp_path):
    """The recovery point is written with the ref's move, in one transaction: a refused move leaves none
    (a rollback of that attempt has nothing to go back to, and nothing to undo)."""
    from merges.attempts import MergePlan, run_attempt
    from merges.engine.convergence import Source

    repo = source_repo(tmp_path)
    base = repo.head("HEAD")
    repo.git.run("checkout", "-q", "-b", "task")
    task = repo.commit({"a.txt": "a\n"})
    repo.git.run("checkout", "-q", "main")
    moved = repo.commit({"b.txt": "someone else\n"})
    git = repo.git
    ticket = run_ticket(repo, [{"key": "A", "command": sh("true")}])  # a ticket the attempt can name
    attempt = run_attempt(git, MergePlan(sources=[Source("task", task, fork_point=base)]), ticket_id=ticket.pk,
                          target_ref="refs/heads/main", expected_head=base, ref_seen=base)

    assert attempt.status == "failed" and "moved underneath" in attempt.error
    assert git.rev_parse(attempt.recovery_ref) is None and repo.head("refs/heads/main") == moved
